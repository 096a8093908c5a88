"""Comment threads under petitions: comments, their edit history, endorsements and flags.

An anonymous comment stores no account id: it is written by a batch from a cookie-less request carrying the
wallet's discussion credential (app/comments/anonymous.py), with a random id, the hour, a pseudonym and an author
tag that are both hashes of the credential's secret message: neither a dump nor an operator holding every key can
tie it back to an account.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, str_enum
from app.core.i18n import N_
from app.models.accounts import User

BODY_MAX = 5000
FLAG_NOTE_MAX = 500
REASON_MAX = 500
MAX_DEPTH = 4
# Named comments take ids below this; anonymous ones a random id above it (app/comments/anonymous.py), so an id says
# nothing about which named comments came before or after. Within the 32-bit range every page and cursor accepts.
ANONYMOUS_ID_FLOOR = 2**30


class CommentState(StrEnum):
    visible = "visible"
    deleted = "deleted"  # by its author: the thread keeps its shape
    hidden = "hidden"  # by a moderator, with a public reason shown in its place


class Review(StrEnum):
    none = "none"
    pending = "pending"  # flagged, waiting in the moderators' queue
    done = "done"  # a moderator decided (hid it, or kept it)


FLAG_REASONS = {
    "harassment": N_("Harassment or a personal attack"),
    "personal_information": N_("Shares someone's personal information"),
    "discrimination": N_("Discrimination or hate"),
    "spam": N_("Spam or advertising"),
    "off_topic": N_("Not about this petition"),
    "other": N_("Something else (say what)"),
}


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (
        # Each listing is one index range: top-level comments by rank, by endorsements or newest first;
        # replies oldest first under their parent. Partial indexes, because "parent_id IS NULL" in a composite
        # index does not let PostgreSQL read the rest of the key in order.
        Index(
            "ix_comments_top_level_rank",
            "petition_id",
            "rank",
            "id",
            postgresql_where=text("parent_id IS NULL"),
            sqlite_where=text("parent_id IS NULL"),
        ),
        Index(
            "ix_comments_top_level_endorsements",
            "petition_id",
            "endorsement_count",
            "id",
            postgresql_where=text("parent_id IS NULL"),
            sqlite_where=text("parent_id IS NULL"),
        ),
        # Newest first, and replies oldest first, by time then id: anonymous comments have random ids.
        Index(
            "ix_comments_top_level_created",
            "petition_id",
            "created_at",
            "id",
            postgresql_where=text("parent_id IS NULL"),
            sqlite_where=text("parent_id IS NULL"),
        ),
        Index("ix_comments_parent_created", "parent_id", "created_at", "id"),
        Index("ix_comments_petition_created", "petition_id", "created_at", "id"),  # new since a reader's last look
        # The organizers' digest: what it has not listed yet.
        Index(
            "ix_comments_undigested",
            "petition_id",
            postgresql_where=text("NOT digested"),
            sqlite_where=text("NOT digested"),
        ),
        Index("ix_comments_review_flags", "review", "flags_since_review"),
        CheckConstraint("depth BETWEEN 1 AND 4", name="depth_in_range"),
        CheckConstraint("endorsement_count >= 0", name="endorsement_count_not_negative"),
        # Named or pseudonymous, never both (both empty once a named author's account is deleted).
        CheckConstraint("author_id IS NULL OR pseudonym IS NULL", name="named_or_pseudonymous"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    # A reply to a comment at the deepest level is attached beside it and quotes it.
    quoted_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="SET NULL"))
    depth: Mapped[int]
    # NULL for an anonymous comment, which carries a pseudonym instead.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    pseudonym: Mapped[str | None] = mapped_column(String(32))
    # Anonymous comments only: SHA-256 of the credential message that wrote it (app/comments/anonymous.py), which
    # its author presents to edit or delete it.
    author_proof: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    state: Mapped[CommentState] = mapped_column(str_enum(CommentState, 12), default=CommentState.visible)
    hidden_reason: Mapped[str | None] = mapped_column(String(REASON_MAX))
    # "Top" order: endorsements with a time decay, as one stored number so the order is an index range
    # (log2 of endorsements plus the creation time in half-days: newer comments need fewer endorsements).
    rank: Mapped[float] = mapped_column(Float)
    endorsement_count: Mapped[int] = mapped_column(default=0)
    reply_count: Mapped[int] = mapped_column(default=0)
    flags_since_review: Mapped[int] = mapped_column(default=0)
    review: Mapped[Review] = mapped_column(str_enum(Review, 12), default=Review.none)
    # Anonymous comments keep only the hour of the batch that published them.
    created_at: Mapped[datetime]
    edited_at: Mapped[datetime | None]
    # Listed in an organizers' digest already (a flag rather than an id or a time: both would date anonymous ones).
    digested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    author: Mapped[User | None] = relationship(lazy="raise", foreign_keys=[author_id])
    quoted: Mapped[Comment | None] = relationship(lazy="raise", remote_side=[id], foreign_keys=[quoted_id])

    @property
    def is_anonymous(self) -> bool:
        return self.pseudonym is not None

    @property
    def is_visible(self) -> bool:
        return self.state == CommentState.visible

    @property
    def is_deleted(self) -> bool:
        return self.state == CommentState.deleted

    @property
    def is_hidden(self) -> bool:
        return self.state == CommentState.hidden

    @property
    def awaiting_review(self) -> bool:
        """Flagged and waiting in the moderators' queue."""
        return self.review == Review.pending


class CommentRevision(Base):
    """A comment's earlier text, kept when it is edited after the edit window: the history anyone can read."""

    __tablename__ = "comment_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    body_html: Mapped[str] = mapped_column(Text)
    # When this text was replaced (hour precision for anonymous comments).
    replaced_at: Mapped[datetime]


class CommentEndorsement(Base):
    __tablename__ = "comment_endorsements"

    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class CommentFlag(Base):
    __tablename__ = "comment_flags"
    __table_args__ = (UniqueConstraint("comment_id", "user_id", name="uq_comment_flags_comment_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(FLAG_NOTE_MAX))
    created_at: Mapped[datetime]
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
