"""What the comment surfaces accept and return."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.anonymous.service import decode
from app.comments.moderation import reason_label
from app.core import b64url
from app.models.comments import BODY_MAX, FLAG_NOTE_MAX, FLAG_REASONS, REASON_MAX, Comment, CommentFlag
from app.models.petitions import Petition


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


CHECKED, UNCHECKED = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


def _checkbox(value: object) -> object:
    """A page's checkbox as a boolean. Any other text is left for the strict boolean to refuse: "AAA" was
    accepted as false."""
    if isinstance(value, str) and value.lower() in CHECKED + UNCHECKED:
        return value.lower() in CHECKED
    return value


def _blank_to_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return _strip(value)


BODY_FIELD = Field(
    min_length=1,
    max_length=BODY_MAX,
    description=(f"Markdown: emphasis, lists, links, quotes and code. At most {BODY_MAX} characters."),
)


class CommentSort(StrEnum):
    top = "top"  # endorsements, with newer comments needing fewer
    newest = "newest"
    endorsed = "endorsed"  # most endorsed first: the top concerns


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    body: str = BODY_FIELD
    parent_id: int | None = Field(default=None, ge=1, le=2_147_483_647, description="The comment this replies to.")
    anonymous: bool = Field(
        default=False, strict=True, description="Post under a per-petition pseudonym (where allowed)."
    )

    _strip_body = field_validator("body", mode="before")(_strip)
    _blank_parent = field_validator("parent_id", mode="before")(_blank_to_none)
    _checkboxes = field_validator("anonymous", mode="before")(_checkbox)


class CommentEdit(BaseModel):
    model_config = ConfigDict(extra="ignore")

    body: str = BODY_FIELD

    _strip_body = field_validator("body", mode="before")(_strip)


class FlagCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reason: str = Field(min_length=1, max_length=32, description=f"One of: {', '.join(FLAG_REASONS)}.")
    note: str | None = Field(default=None, max_length=FLAG_NOTE_MAX)

    _none_note = field_validator("note", mode="before")(_blank_to_none)

    @field_validator("reason")
    @classmethod
    def _known_reason(cls, value: str) -> str:
        if value not in FLAG_REASONS:
            raise ValueError("Choose a reason from the list.")
        return value


class ModerationReason(BaseModel):
    """A moderator's public reason (hiding a comment, locking a discussion)."""

    model_config = ConfigDict(extra="ignore")

    reason: str = Field(min_length=1, max_length=REASON_MAX)

    _strip_reason = field_validator("reason", mode="before")(_strip)


class NotificationPreferences(BaseModel):
    model_config = ConfigDict(extra="ignore")

    comment_replies: bool = Field(strict=True)

    _checkboxes = field_validator("comment_replies", mode="before")(_checkbox)


class CommentNode(Protocol):
    """A comment as its reader sees it: the shape app/comments/repository.py's Node has."""

    @property
    def comment(self) -> Comment: ...
    @property
    def replies(self) -> Sequence[CommentNode]: ...
    @property
    def more_replies(self) -> bool: ...
    @property
    def endorsed(self) -> bool: ...
    @property
    def mine(self) -> bool: ...
    @property
    def collapsed(self) -> bool: ...
    @property
    def has_history(self) -> bool: ...


def author_label(comment: Comment) -> str:
    if comment.pseudonym:
        return comment.pseudonym
    return comment.author.display_name if comment.author else "A former member"


class CommentRead(BaseModel):
    id: int
    petition_id: int
    parent_id: int | None
    depth: int
    quoted_id: int | None = Field(description="Set when this replies to a comment at the deepest level.")
    author: str | None = Field(description="The author's name, or a pseudonym; null once removed.")
    anonymous: bool
    state: str = Field(description="visible, deleted (by its author) or hidden (by moderators).")
    body_html: str | None = Field(description="Sanitized HTML; null unless visible.")
    hidden_reason: str | None
    collapsed: bool = Field(description="Flagged by several people and waiting for a moderator.")
    endorsement_count: int
    endorsed_by_me: bool
    mine: bool
    reply_count: int
    created_at: datetime
    edited_at: datetime | None
    has_history: bool
    replies: list[CommentRead] = Field(default_factory=list)
    more_replies: bool = Field(description="More replies exist: page through GET /api/v1/comments/{id}/replies.")

    @classmethod
    def of(cls, node: CommentNode) -> Self:
        """The comment with its replies as `node` holds them; its author and text only while it is visible."""
        comment = node.comment
        shown = comment.is_visible
        return cls(
            id=comment.id,
            petition_id=comment.petition_id,
            parent_id=comment.parent_id,
            depth=comment.depth,
            quoted_id=comment.quoted_id,
            anonymous=comment.is_anonymous,
            author=author_label(comment) if shown else None,
            state=comment.state,
            body_html=comment.body_html if shown else None,
            hidden_reason=comment.hidden_reason,
            collapsed=node.collapsed,
            endorsement_count=comment.endorsement_count,
            endorsed_by_me=node.endorsed,
            mine=node.mine,
            reply_count=comment.reply_count,
            created_at=comment.created_at,
            edited_at=comment.edited_at,
            has_history=node.has_history,
            replies=[cls.of(reply) for reply in node.replies],
            more_replies=node.more_replies,
        )


class CommentPage(BaseModel):
    items: list[CommentRead]
    next_cursor: str | None
    comment_count: int
    locked_reason: str | None
    accepting_comments: bool

    @classmethod
    def of(
        cls, nodes: Sequence[CommentNode], *, petition: Petition, next_cursor: str | None, accepting_comments: bool
    ) -> Self:
        return cls(
            items=[CommentRead.of(node) for node in nodes],
            next_cursor=next_cursor,
            comment_count=petition.comment_count,
            locked_reason=petition.comments_locked_reason,
            accepting_comments=accepting_comments,
        )


class RevisionRead(BaseModel):
    body_html: str
    replaced_at: datetime


class FlagRead(BaseModel):
    reason: str = Field(description=f"One of: {', '.join(FLAG_REASONS)}.")
    label: str = Field(description="The reason in words.")
    note: str | None

    @classmethod
    def of(cls, flag: CommentFlag) -> Self:
        return cls(reason=flag.reason, label=reason_label(flag.reason), note=flag.note)


class FlaggedRead(BaseModel):
    comment: CommentRead
    body_html: str
    flags: list[FlagRead]

    @classmethod
    def of(cls, node: CommentNode, flags: Sequence[CommentFlag]) -> Self:
        """A flagged comment for moderators: its text even when hidden, and the flags' reasons (never who flagged)."""
        return cls(
            comment=CommentRead.of(node), body_html=node.comment.body_html, flags=[FlagRead.of(f) for f in flags]
        )


class FlagAccepted(BaseModel):
    message: str


# Binary fields as the anonymous-signing API takes them (one pattern, one decoder: app/core/b64url.py).
MESSAGE_FIELD = Field(
    min_length=43, max_length=700, pattern=b64url.PATTERN, description=f"The credential's message, {b64url.ON_INPUT}."
)
SIGNATURE_FIELD = Field(
    min_length=1,
    max_length=1400,
    pattern=b64url.PATTERN,
    description=f"The petition's discussion-key signature on it, {b64url.ON_INPUT}.",
)


class AnonymousCommentDelete(BaseModel):
    """The credential's message alone proves authorship: only its author's wallet holds it."""

    model_config = ConfigDict(extra="forbid")

    message: str = MESSAGE_FIELD

    def decoded_message(self) -> bytes:
        return decode(self.message, field="message")


def _storable(value: str) -> str:
    """Checked at once, since the comment is written only by a later batch: a NUL character (which PostgreSQL
    cannot store) would fail that batch instead of this request."""
    if "\x00" in value:
        raise ValueError("A comment cannot contain a NUL character.")
    return value


class AnonymousCommentEdit(AnonymousCommentDelete):
    signature: str = SIGNATURE_FIELD
    body: str = BODY_FIELD

    _strip_body = field_validator("body", mode="before")(_strip)
    _storable_body = field_validator("body")(_storable)

    def decoded(self) -> tuple[bytes, bytes]:
        return self.decoded_message(), decode(self.signature, field="signature")


class AnonymousCommentCreate(AnonymousCommentEdit):
    petition_id: int = Field(ge=1, le=2_147_483_647)
    parent_id: int | None = Field(default=None, ge=1, le=2_147_483_647, description="The comment this replies to.")


class AnonymousCommentAccepted(BaseModel):
    status: str = Field(description="Always `queued`: the comment is published with a later batch.")
    publish_within_seconds: float = Field(
        description=(
            "When it appears at the latest if enough colleagues' comments wait with it (at least the minimum group "
            "size); otherwise it waits longer, up to the deployment's maximum delay."
        )
    )
    pseudonym: str


class ChangeAccepted(BaseModel):
    status: str = Field(
        description="`queued`: applied with the next hourly batch; `done`: applied at once "
        "(deployments without batching)."
    )
    publish_within_seconds: float
