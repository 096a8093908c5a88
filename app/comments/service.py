"""The rules of a petition's discussion: who may post, reply, edit, delete, endorse and flag, and when."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from app.comments.schemas import CommentCreate, CommentEdit, FlagCreate, NotificationPreferences
from app.core.clock import to_the_hour
from app.core.database import rows_changed
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.i18n import N_
from app.core.markdown import render_comment
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.mail import service as mail
from app.mail import unsubscribe
from app.models.accounts import User
from app.models.comments import (
    ANONYMOUS_ID_FLOOR,
    MAX_DEPTH,
    Comment,
    CommentEndorsement,
    CommentFlag,
    CommentRevision,
    CommentState,
    Review,
)
from app.models.lifecycle import SIGNABLE_STATES, PetitionState
from app.models.mail_kinds import MailKind
from app.models.petitions import Petition
from app.petitions import service as petitions

# One doubling of endorsements is worth this much newness in the "top" order.
RANK_HALF_LIFE_SECONDS = 12 * 3600


def rank(*, endorsements: int, created_at: datetime) -> float:
    return math.log2(1 + endorsements) + created_at.timestamp() / RANK_HALF_LIFE_SECONDS


def is_author(*, comment: Comment, user: User | None) -> bool:
    """Named comments only: an anonymous comment's author is whoever holds its credential (app/comments/anonymous.py),
    which the server cannot tell from a session."""
    return user is not None and comment.author_id is not None and comment.author_id == user.id


def closed_reason(petition: Petition) -> str | None:
    """Why the discussion takes no new comments, replies, edits or endorsements, or None while it does."""
    if petition.comments_locked_reason:
        return f"Moderators locked this discussion: {petition.comments_locked_reason}"
    if petition.state is PetitionState.rejected:
        return N_("The moderators rejected this petition, so its discussion is read-only.")
    if petition.state is PetitionState.archived:
        return N_("This petition is archived, so its discussion is read-only.")
    if petition.state not in SIGNABLE_STATES:
        return N_("This petition is closed, so its discussion is read-only.")
    return None


def _require_open_discussion(petition: Petition) -> None:
    reason = closed_reason(petition)
    if reason:
        raise Conflict(reason)


def get_readable(*, db: Session, rt: Runtime, comment_id: int, user: User | None) -> tuple[Comment, Petition]:
    """A comment under a petition the viewer may read."""
    # Refreshing the comment refreshes its author too, and when the viewer wrote it, that is the viewer's own
    # row: its roles (lazy='raise') came back unloaded, and deciding whether a moderator may read a petition
    # that is not public then failed with a 500. The roles the request loaded are put back.
    grants = None if user is None or "roles" in inspect(user).unloaded else user.roles
    comment = db.get(
        Comment,
        comment_id,
        options=[joinedload(Comment.author), joinedload(Comment.quoted).joinedload(Comment.author)],
        populate_existing=True,
    )
    if user is not None and grants is not None and "roles" in inspect(user).unloaded:
        set_committed_value(user, "roles", grants)
    if comment is None:
        raise NotFound(N_("There is no such comment."))
    petition = petitions.get_readable(db=db, rt=rt, petition_id=comment.petition_id, user=user)
    return comment, petition


def create(*, db: Session, rt: Runtime, petition: Petition, author: User, form: CommentCreate) -> Comment:
    page_changed(db, petition.id)
    _require_open_discussion(petition)
    parent = quoted = None
    depth = 1
    if form.parent_id is not None:
        parent = db.get(Comment, form.parent_id, options=[joinedload(Comment.author)])
        if parent is None or parent.petition_id != petition.id:
            raise InvalidInput(
                N_("Please correct the highlighted fields."),
                fields={"parent_id": N_("The comment you reply to is not in this petition's discussion.")},
            )
        if not parent.is_visible:
            raise Conflict(N_("That comment was removed, so it takes no replies."))
        if parent.depth >= MAX_DEPTH:
            # The deepest level takes no children: the reply goes beside the comment and quotes it.
            quoted, parent = parent, db.get(Comment, parent.parent_id)
            assert parent is not None  # a comment at depth > 1 always has a parent
        depth = parent.depth + 1
    if form.anonymous:
        # A signed-in request names its author: anonymous comments go through the wallet, without cookies.
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={
                "anonymous": N_(
                    "Anonymous comments are sent by your wallet, without your session, so that nothing ties them to your "
                    "account: post it from the petition page with JavaScript on, or with `undersigned client comment`."
                )
            },
        )
    rt.limiter.hit(action="comment", subject=f"account:{author.id}", rule=rt.settings.rate_limit_comment)
    now = rt.clock.now()
    comment = Comment(
        id=_next_named_id(db),
        petition_id=petition.id,
        parent_id=parent.id if parent else None,
        quoted_id=quoted.id if quoted else None,
        depth=depth,
        author_id=author.id,
        pseudonym=None,
        body=form.body,
        body_html=render_comment(form.body),
        state=CommentState.visible,
        rank=rank(endorsements=0, created_at=now),
        endorsement_count=0,
        reply_count=0,
        flags_since_review=0,
        review=Review.none,
        created_at=now,
        digested=False,
        author=author,
        quoted=quoted,
    )
    db.add(comment)
    db.flush()
    db.execute(
        update(Petition)
        .where(Petition.id == petition.id)
        .values(comment_count=Petition.comment_count + 1)
        .execution_options(synchronize_session=False)
    )
    if parent is not None:
        db.execute(
            update(Comment)
            .where(Comment.id == parent.id)
            .values(reply_count=Comment.reply_count + 1)
            .execution_options(synchronize_session=False)
        )
        _tell_author_of_reply(db=db, rt=rt, petition=petition, parent=quoted or parent, reply=comment, replier=author)
    db.flush()
    return comment


def _next_named_id(db: Session) -> int | None:
    """PostgreSQL's sequence ignores the random ids of anonymous comments; SQLite would continue after the largest
    id in the table, so there the next named id is counted below the anonymous range (under the write lock every
    SQLite writer holds)."""
    if db.get_bind().dialect.name != "sqlite":
        return None
    return (db.scalar(select(func.max(Comment.id)).where(Comment.id < ANONYMOUS_ID_FLOOR)) or 0) + 1


def _tell_author_of_reply(
    *, db: Session, rt: Runtime, petition: Petition, parent: Comment, reply: Comment, replier: User
) -> None:
    # Authors of anonymous comments cannot be told: nothing says who they are. Anonymous replies tell nobody:
    # an email queued (or not queued, for one's own) at that moment would date the reply and hint at its author.
    if parent.author_id is None or reply.is_anonymous or parent.author_id == replier.id:
        return
    recipient = db.get(User, parent.author_id)
    if recipient is None or not recipient.notify_comment_replies or not recipient.is_verified:
        return
    base_url = rt.settings.base_url.rstrip("/")
    mail.queue(
        db=db,
        templates=rt.templates,
        to_address=recipient.notification_address,
        template="comment_reply",
        now=rt.clock.now(),
        context={
            "user": recipient,
            "petition": petition,
            "reply": reply,
            "replier": reply.pseudonym or replier.display_name,
            "comment_url": f"{base_url}/comments/{reply.id}",
            "account_url": f"{base_url}/account",
        },
        unsubscribe_url=unsubscribe.link(rt=rt, user_id=recipient.id, kind=MailKind.replies, petition_id=None),
        account_url=f"{base_url}/account",
    )


def require_author(comment: Comment, user: User) -> None:
    if not is_author(comment=comment, user=user):
        if comment.is_anonymous:
            raise Forbidden(N_("Only the author can change this comment, with the wallet that wrote it."))
        raise Forbidden(N_("Only the author can change this comment."))


def edit(*, db: Session, rt: Runtime, petition: Petition, comment: Comment, user: User, form: CommentEdit) -> None:
    page_changed(db, petition.id)
    require_author(comment, user)
    if not comment.is_visible:
        raise Conflict(N_("This comment was removed and can no longer be edited."))
    _require_open_discussion(petition)
    now = rt.clock.now()
    window = timedelta(minutes=rt.settings.comment_edit_minutes)
    if now - comment.created_at > window:
        db.add(CommentRevision(comment_id=comment.id, body_html=comment.body_html, replaced_at=now))
    comment.body, comment.body_html = form.body, render_comment(form.body)
    comment.edited_at = now
    db.flush()


def delete_by_author(*, db: Session, comment: Comment, user: User) -> None:
    """The author takes the words back; the thread keeps its shape around a "[deleted by author]" marker.

    Always allowed, even in a closed or locked discussion: nobody has to keep their words up."""
    page_changed(db, comment.petition_id)
    require_author(comment, user)
    if comment.state is CommentState.deleted:
        raise Conflict(N_("This comment is already deleted."))
    remove(db=db, comment=comment)


def remove(*, db: Session, comment: Comment) -> None:
    """Empty a comment its author deleted (a hidden one too: its author may still take the words out of the
    database), with its history."""
    page_changed(db, comment.petition_id)
    comment.state, comment.body, comment.body_html, comment.author_proof = CommentState.deleted, "", "", None
    comment.hidden_reason = None
    if comment.review == Review.pending:
        comment.review = Review.done
    db.execute(delete(CommentRevision).where(CommentRevision.comment_id == comment.id))
    db.execute(update(CommentFlag).where(CommentFlag.comment_id == comment.id).values(resolved=True))
    db.flush()


def _set_endorsements(db: Session, comment: Comment, change: int) -> None:
    page_changed(db, comment.petition_id)
    count = db.execute(
        update(Comment)
        .where(Comment.id == comment.id)
        .values(endorsement_count=Comment.endorsement_count + change)
        .returning(Comment.endorsement_count)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    # Under the row lock the update above took, so the rank matches the count it read.
    db.execute(
        update(Comment)
        .where(Comment.id == comment.id)
        .values(rank=rank(endorsements=count, created_at=comment.created_at))
        .execution_options(synchronize_session=False)
    )
    db.refresh(comment, ["endorsement_count", "rank"])


def endorse(*, db: Session, petition: Petition, comment: Comment, user: User) -> None:
    if not comment.is_visible:
        raise Conflict(N_("That comment was removed and cannot be endorsed."))
    _require_open_discussion(petition)
    # (An anonymous comment's author cannot be recognised here: that is the point of it.)
    if is_author(comment=comment, user=user):
        raise Conflict(N_("You cannot endorse your own comment."))
    try:
        with db.begin_nested():
            db.add(CommentEndorsement(comment_id=comment.id, user_id=user.id))
    except IntegrityError:
        raise Conflict(N_("You already endorse this comment.")) from None
    _set_endorsements(db, comment, +1)


def withdraw_endorsement(*, db: Session, petition: Petition, comment: Comment, user: User) -> None:
    _require_open_discussion(petition)
    removed = rows_changed(
        db.execute(
            delete(CommentEndorsement).where(
                CommentEndorsement.comment_id == comment.id, CommentEndorsement.user_id == user.id
            )
        )
    )
    if removed != 1:
        raise Conflict(N_("You do not endorse this comment."))
    _set_endorsements(db, comment, -1)


def endorses(*, db: Session, comment: Comment, user: User | None) -> bool:
    if user is None:
        return False
    return db.get(CommentEndorsement, (comment.id, user.id)) is not None


def flag(*, db: Session, rt: Runtime, comment: Comment, user: User, form: FlagCreate) -> None:
    """A flag is private and named: it moves the page's version only when the page shows it (the comment folds
    away), so a poll never learns the moment of a flag that changed nothing it shows, or of one refused. Its row,
    tied to the flagger, keeps the hour."""
    was_collapsed = is_collapsed(rt=rt, comment=comment)
    if not comment.is_visible:
        raise Conflict(N_("That comment was already removed."))
    if form.reason == "other" and not form.note:
        raise InvalidInput(N_("Please correct the highlighted fields."), fields={"note": N_("Say what is wrong.")})
    try:
        with db.begin_nested():
            db.add(
                CommentFlag(
                    comment_id=comment.id,
                    user_id=user.id,
                    reason=form.reason,
                    note=form.note,
                    created_at=to_the_hour(rt.clock.now()),
                    resolved=False,
                )
            )
    except IntegrityError:
        raise Conflict(N_("You already flagged this comment; moderators will look at it.")) from None
    db.execute(
        update(Comment)
        .where(Comment.id == comment.id)
        .values(flags_since_review=Comment.flags_since_review + 1, review=Review.pending)
        .execution_options(synchronize_session=False)
    )
    db.refresh(comment, ["flags_since_review", "review"])
    if is_collapsed(rt=rt, comment=comment) != was_collapsed:
        page_changed(db, comment.petition_id)


def is_collapsed(*, rt: Runtime, comment: Comment) -> bool:
    """Flagged by enough people and not yet looked at: shown folded, with its text one click away."""
    return (
        comment.is_visible
        and comment.review == Review.pending
        and comment.flags_since_review >= rt.settings.comment_collapse_flags
    )


def history(*, db: Session, comment: Comment) -> list[CommentRevision]:
    if not comment.is_visible:
        return []
    return list(
        db.scalars(
            select(CommentRevision).where(CommentRevision.comment_id == comment.id).order_by(CommentRevision.id.desc())
        )
    )


def set_preferences(*, db: Session, user: User, form: NotificationPreferences) -> None:
    user.notify_comment_replies = form.comment_replies
    db.flush()
