"""The organizers' daily digest of new top-level comments, sent by the worker.

It remembers what it listed by a flag on each comment, and when it last ran by the hour: an id or a finer time
would date the anonymous comments it lists."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.orm import QueryableAttribute, Session, joinedload, sessionmaker

from app.core.clock import to_the_hour
from app.core.runtime import Runtime
from app.models.comments import Comment, CommentState
from app.models.petitions import Petition
from app.petitions import notify

LISTED = 20


def _new_top_level(petition_id: int | QueryableAttribute[int]) -> tuple[ColumnElement[bool], ...]:
    """Where new top-level comments of a petition are: one (an id) or the one of the enclosing query (its column)."""
    return (
        Comment.petition_id == petition_id,
        Comment.parent_id.is_(None),
        Comment.digested.is_(False),
        Comment.state == CommentState.visible,
    )


def send_digests(*, sessions: sessionmaker[Session], rt: Runtime, limit: int = 200) -> int:
    """Queue a digest for each petition with new top-level comments and no digest in the last day."""
    now = to_the_hour(rt.clock.now())
    due = or_(Petition.comment_digest_sent_at.is_(None), Petition.comment_digest_sent_at <= now - timedelta(days=1))
    with sessions.begin() as db:
        petition_ids = list(
            db.scalars(
                select(Petition.id)
                .where(Petition.comment_count > 0, due, exists().where(*_new_top_level(Petition.id)))
                .limit(limit)
            )
        )
    sent = 0
    for petition_id in petition_ids:
        with sessions.begin() as db:
            # Locked, and the condition checked again: two workers never send the same digest.
            petition = db.scalar(select(Petition).where(Petition.id == petition_id, due).with_for_update())
            if petition is None:
                continue
            condition = _new_top_level(petition.id)
            # What this digest counts is exactly what it marks, whatever is posted meanwhile.
            listed_ids = list(db.scalars(select(Comment.id).where(*condition).order_by(Comment.created_at, Comment.id)))
            count = len(listed_ids)
            if not count:
                continue
            comments = list(
                db.scalars(
                    select(Comment)
                    .where(Comment.id.in_(listed_ids[:LISTED]))
                    .options(joinedload(Comment.author))
                    .order_by(Comment.created_at, Comment.id)
                ).unique()
            )
            notify.tell_organizers(
                db=db,
                rt=rt,
                petition=petition,
                template="comment_digest",
                context={"comments": comments, "count": count},
            )
            for start in range(0, count, 500):
                db.execute(
                    update(Comment)
                    .where(Comment.id.in_(listed_ids[start : start + 500]))
                    .values(digested=True)
                    .execution_options(synchronize_session=False)
                )
            petition.comment_digest_sent_at = now
            sent += 1
    return sent
