"""The organizers' daily digest of new top-level comments, sent by the worker."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from app.comments.models import Comment, CommentState
from app.core.runtime import Runtime
from app.petitions import notify
from app.petitions.models import Petition

LISTED = 20


def _new_top_level(petition_id: int, through):  # type: ignore[no-untyped-def]
    return (Comment.petition_id == petition_id, Comment.parent_id.is_(None), Comment.id > through,
            Comment.state == CommentState.visible)


def send_digests(*, sessions: sessionmaker[Session], rt: Runtime, limit: int = 200) -> int:
    """Queue a digest for each petition with new top-level comments and no digest in the last day."""
    now = rt.clock.now()
    due = or_(Petition.comment_digest_sent_at.is_(None), Petition.comment_digest_sent_at <= now - timedelta(days=1))
    with sessions.begin() as db:
        petition_ids = list(db.scalars(select(Petition.id).where(
            Petition.comment_count > 0, due,
            exists().where(*_new_top_level(Petition.id, Petition.comment_digest_through))).limit(limit)))
    sent = 0
    for petition_id in petition_ids:
        with sessions.begin() as db:
            # Locked, and the condition checked again: two workers never send the same digest.
            petition = db.scalar(select(Petition).where(Petition.id == petition_id, due).with_for_update())
            if petition is None:
                continue
            condition = _new_top_level(petition.id, petition.comment_digest_through)
            count = db.scalar(select(func.count()).select_from(Comment).where(*condition)) or 0
            if not count:
                continue
            comments = list(db.scalars(select(Comment).where(*condition).options(joinedload(Comment.author))
                                       .order_by(Comment.id).limit(LISTED)).unique())
            latest = db.scalar(select(func.max(Comment.id)).where(*condition))
            notify.tell_organizers(db=db, rt=rt, petition=petition, template="comment_digest",
                                   context={"comments": comments, "count": count})
            petition.comment_digest_through, petition.comment_digest_sent_at = latest, now
            sent += 1
    return sent
