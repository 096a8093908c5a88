"""Moderating discussions: the queue of flagged comments, hiding with a public reason, restoring, locking."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from app.audit import service as audit
from app.core.errors import Conflict
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.models.accounts import User
from app.models.comments import FLAG_REASONS, Comment, CommentFlag, CommentState, Review
from app.models.petitions import Petition

QUEUE_SIZE = 50


@dataclass
class Flagged:
    comment: Comment
    petition: Petition
    flags: list[CommentFlag]


def queue(*, db: Session, limit: int = QUEUE_SIZE) -> list[Flagged]:
    """Flagged comments waiting for a decision, the most flagged first. Flaggers are not shown: only reasons."""
    comments = list(
        db.scalars(
            select(Comment)
            .where(Comment.review == Review.pending)
            .options(joinedload(Comment.author))
            .order_by(Comment.flags_since_review.desc(), Comment.id)
            .limit(limit)
        ).unique()
    )
    if not comments:
        return []
    ids = [comment.id for comment in comments]
    petitions = {
        p.id: p
        for p in db.scalars(select(Petition).where(Petition.id.in_({comment.petition_id for comment in comments})))
    }
    flags: dict[int, list[CommentFlag]] = {comment_id: [] for comment_id in ids}
    for flag in db.scalars(
        select(CommentFlag)
        .where(CommentFlag.comment_id.in_(ids), CommentFlag.resolved.is_(False))
        .order_by(CommentFlag.id)
    ):
        flags[flag.comment_id].append(flag)
    return [Flagged(comment, petitions[comment.petition_id], flags[comment.id]) for comment in comments]


def waiting(*, db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Comment).where(Comment.review == Review.pending)) or 0


def reason_label(code: str) -> str:
    return FLAG_REASONS.get(code, code)


def _decided(db: Session, comment: Comment) -> None:
    comment.review, comment.flags_since_review = Review.done, 0
    db.execute(
        update(CommentFlag)
        .where(CommentFlag.comment_id == comment.id, CommentFlag.resolved.is_(False))
        .values(resolved=True)
    )


def _audit(db: Session, rt: Runtime, moderator: User, action: str, comment: Comment, **detail: object) -> None:
    # The subject names the comment, never its author: an anonymous comment's author is unknown to everyone.
    audit.record(
        db=db,
        rt=rt,
        actor=moderator,
        action=action,
        subject=f"comment {comment.id}",
        detail={"petition": comment.petition_id, **detail},
    )


def hide(*, db: Session, rt: Runtime, comment: Comment, moderator: User, reason: str) -> None:
    page_changed(db, comment.petition_id)
    if comment.state is CommentState.deleted:
        raise Conflict(N_("Its author already deleted this comment."))
    if comment.state is CommentState.hidden:
        raise Conflict(N_("This comment is already hidden."))
    comment.state, comment.hidden_reason = CommentState.hidden, reason
    _decided(db, comment)
    _audit(db, rt, moderator, "comment.hidden", comment, reason=reason)
    db.flush()


def restore(*, db: Session, rt: Runtime, comment: Comment, moderator: User) -> None:
    """Show a hidden comment again, or keep a flagged one as it is: either way the flags are answered."""
    page_changed(db, comment.petition_id)
    if comment.state is CommentState.deleted:
        raise Conflict(N_("Its author deleted this comment: there is nothing to restore."))
    if comment.state is CommentState.visible and comment.review != Review.pending:
        raise Conflict(N_("This comment is neither hidden nor waiting for review."))
    action = "comment.restored" if comment.state is CommentState.hidden else "comment.kept"
    comment.state, comment.hidden_reason = CommentState.visible, None
    _decided(db, comment)
    _audit(db, rt, moderator, action, comment)
    db.flush()


def lock(*, db: Session, rt: Runtime, petition: Petition, moderator: User, reason: str) -> None:
    page_changed(db, petition.id)
    if petition.comments_locked_reason:
        raise Conflict(N_("This discussion is already locked."))
    petition.comments_locked_reason, petition.comments_locked_at = reason, rt.clock.now()
    audit.record(
        db=db,
        rt=rt,
        actor=moderator,
        action="comments.locked",
        subject=f"petition {petition.id}",
        detail={"reason": reason},
    )
    db.flush()


def unlock(*, db: Session, rt: Runtime, petition: Petition, moderator: User) -> None:
    page_changed(db, petition.id)
    if not petition.comments_locked_reason:
        raise Conflict(N_("This discussion is not locked."))
    petition.comments_locked_reason, petition.comments_locked_at = None, None
    audit.record(db=db, rt=rt, actor=moderator, action="comments.unlocked", subject=f"petition {petition.id}")
    db.flush()
