"""Anonymous comments, carried by the wallet's discussion credential rather than the session.

The author's browser (or `undersigned client`) sends the comment without cookies, with the petition's discussion
credential: a blind signature the server issued to some member without seeing it (app/anonymous/wallet.py). So:
- the pseudonym is derived from the credential's message, which only the author's wallet holds: neither a copy of
  the database nor an operator holding every key can compute it for an account;
- the right to edit or delete follows the message too: presenting it (it hashes to the comment's author tag) is
  proof of authorship, on any device the wallet is on;
- the comment waits, in memory or Redis, for the next hour's batch, and is written with a random id outside the
  named comments' sequence and the hour as its only time: its request leaves no log line, and its id and time
  say nothing about when it was sent.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.anonymous import batching, wallet
from app.comments.queue import Change, Pending, comment_queue
from app.comments.service import _require_open_discussion, rank, remove
from app.core.clock import to_the_hour
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from app.core.i18n import N_
from app.core.logging import COARSE_TIME
from app.core.markdown import render_comment
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.models.comments import ANONYMOUS_ID_FLOOR, MAX_DEPTH, Comment, CommentRevision, CommentState, Review
from app.models.lifecycle import SIGNABLE_STATES
from app.models.petitions import Petition, PetitionEvent

logger = logging.getLogger("undersigned.comments")

PSEUDONYM_DOMAIN = b"undersigned/pseudonym/v1"
AUTHOR_DOMAIN = b"undersigned/comment-author/v1"
ID_CEILING = 2**31 - 1  # a billion ids above the floor: a collision is drawn again


def pseudonym(message: bytes) -> str:
    return "Colleague " + hashlib.sha256(PSEUDONYM_DOMAIN + message).hexdigest()[:6]


def author_tag(message: bytes) -> str:
    """What the comment row keeps of its author: a hash of the credential's secret message."""
    return hashlib.sha256(AUTHOR_DOMAIN + message).hexdigest()


def _credential(db: Session, rt: Runtime, petition_id: int, message: bytes, signature: bytes) -> Petition:
    return wallet.verify(
        db=db, rt=rt, petition_id=petition_id, purpose=wallet.Purpose.discuss, message=message, signature=signature
    )


def _parent(db: Session, petition: Petition, parent_id: int | None) -> Comment | None:
    if parent_id is None:
        return None
    parent = db.get(Comment, parent_id)
    if parent is None or parent.petition_id != petition.id:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"parent_id": N_("The comment you reply to is not in this petition's discussion.")},
        )
    if not parent.is_visible:
        raise Conflict(N_("That comment was removed, so it takes no replies."))
    return parent


def submit(
    *, db: Session, rt: Runtime, petition_id: int, message: bytes, signature: bytes, body: str, parent_id: int | None
) -> Pending:
    """Accept an anonymous comment for the next batch (written at once when batching is off: tests and
    development). Refuses, in plain words, what the batch would not write."""
    petition = _credential(db, rt, petition_id, message, signature)
    if not petition.allow_anonymous:
        raise Conflict(N_("This petition does not take anonymous comments."))
    _require_open_discussion(petition)
    _parent(db, petition, parent_id)
    tag = author_tag(message)
    _limit(rt, tag)
    item = Pending(
        ref=secrets.token_hex(16),
        petition_id=petition.id,
        parent_id=parent_id,
        body=body,
        author_tag=tag,
        pseudonym=pseudonym(message),
    )
    if rt.settings.anonymous_batch_seconds == 0:
        write_group(db, petition, [item], to_the_hour(rt.clock.now()))
    else:
        comment_queue(rt).add(item)
    return item


# How many comments and changes one credential may have waiting for a batch. Limited per credential, never per
# account (the request names none), and counted in the queue itself: a rate-limit key's lifetime in Redis would
# date the first of them.
MAX_WAITING = 10


def _limit(rt: Runtime, tag: str) -> None:
    if comment_queue(rt).waiting_from(tag) >= MAX_WAITING:
        raise RateLimited(
            N_("You have many anonymous comments and changes waiting for the next batch: send more once they appear."),
            headers={"Retry-After": "3600"},
        )


def publish_within_seconds(rt: Runtime) -> float:
    """The longest an accepted comment waits when the batch is large enough: to the top of the next hour."""
    if rt.settings.anonymous_batch_seconds == 0:
        return 0.0
    now = rt.clock.now()
    return float(3600 - (now.minute * 60 + now.second))


def _new_id(db: Session, taken: set[int]) -> int:
    while True:
        candidate = secrets.SystemRandom().randint(ANONYMOUS_ID_FLOOR, ID_CEILING)
        if candidate not in taken and db.get(Comment, candidate) is None:
            taken.add(candidate)
            return candidate


def write_group(db: Session, petition: Petition, items: list[Pending], at: datetime) -> list[Comment]:
    """Write one petition's accepted comments, shuffled, each with a random id and the batch's hour. A reply whose
    parent went away meanwhile is attached to the discussion's top level rather than lost."""
    page_changed(db, petition.id)
    random.SystemRandom().shuffle(items)
    taken: set[int] = set()
    written = []
    for item in items:
        parent = db.get(Comment, item.parent_id) if item.parent_id is not None else None
        if parent is not None and (parent.petition_id != petition.id or not parent.is_visible):
            parent = None
        quoted = None
        if parent is not None and parent.depth >= MAX_DEPTH:
            quoted, parent = parent, db.get(Comment, parent.parent_id)
        comment = Comment(
            id=_new_id(db, taken),
            petition_id=petition.id,
            parent_id=parent.id if parent else None,
            quoted_id=quoted.id if quoted else None,
            depth=parent.depth + 1 if parent else 1,
            author_id=None,
            pseudonym=item.pseudonym,
            author_proof=item.author_tag,
            body=item.body,
            body_html=render_comment(item.body),
            state=CommentState.visible,
            rank=rank(endorsements=0, created_at=at),
            endorsement_count=0,
            reply_count=0,
            flags_since_review=0,
            review=Review.none,
            created_at=at,
            digested=False,
        )
        db.add(comment)
        if parent is not None:
            db.execute(
                update(Comment)
                .where(Comment.id == parent.id)
                .values(reply_count=Comment.reply_count + 1)
                .execution_options(synchronize_session=False)
            )
        written.append(comment)
    db.execute(
        update(Petition)
        .where(Petition.id == petition.id)
        .values(comment_count=Petition.comment_count + len(written))
        .execution_options(synchronize_session=False)
    )
    db.flush()
    return written


def write_batch(*, sessions: sessionmaker[Session], rt: Runtime, final: bool = False) -> int:
    """The hourly batch: each petition's waiting comments and edits written together once they come from at least
    k credentials (or have waited the longest, or the discussion closed), else held for a later hour; deletions
    applied at once (nobody should have to keep their words up longer than an hour). `final`: the process is
    stopping and its memory goes with it, so everything goes out (a smaller batch noted as such). Returns comments
    written."""
    at = to_the_hour(rt.clock.now())
    by_petition: dict[int, list[Pending]] = {}
    for item in comment_queue(rt).take():
        by_petition.setdefault(item.petition_id, []).append(item)
    changes = comment_queue(rt).take_changes()
    edits_by_petition: dict[int, list[Change]] = {}
    try:
        with sessions.begin() as db:
            for change in changes:
                comment = db.get(Comment, change.comment_id)
                if comment is None or comment.author_proof != change.author_tag:
                    continue  # deleted meanwhile
                if change.body is None:
                    remove(db=db, comment=comment)
                else:
                    edits_by_petition.setdefault(comment.petition_id, []).append(change)
    except Exception:
        # Everything taken goes back: nothing accepted is lost to one bad moment.
        for items in by_petition.values():
            for item in items:
                comment_queue(rt).add(item)
        for change in changes:
            comment_queue(rt).add_change(change)
        logger.exception(
            "applying anonymous comment deletions failed; the batch is kept for the next one", extra={COARSE_TIME: True}
        )
        return 0
    written = 0
    for petition_id in set(by_petition) | set(edits_by_petition):
        group, edits = by_petition.get(petition_id, []), edits_by_petition.get(petition_id, [])
        try:
            with sessions.begin() as db:
                written += _publish(db, rt, petition_id, group, edits, at, final)
        except Exception:
            for item in group:
                comment_queue(rt).add(item)
            for change in edits:
                comment_queue(rt).add_change(change)
            logger.exception(
                "writing a batch of anonymous comments failed; it is kept for the next one", extra={COARSE_TIME: True}
            )
    return written


def _publish(
    db: Session, rt: Runtime, petition_id: int, group: list[Pending], edits: list[Change], at: datetime, final: bool
) -> int:
    petition = db.get(Petition, petition_id)
    if petition is None:
        return 0  # deleted with its discussion
    waited = comment_queue(rt).waited(petition_id)
    closing = final or petition.state not in SIGNABLE_STATES or bool(petition.comments_locked_reason)
    # Authors, not comments: five comments under one pseudonym hide nobody. The same rule as anonymous signatures;
    # this batch runs once an hour, so rounds are hours.
    authors = len({item.author_tag for item in group} | {change.author_tag for change in edits})
    if (
        batching.publish_reason(
            count=authors,
            hours_waited=waited,
            closing=closing,
            min_group_size=rt.settings.min_group_size,
            max_delay_seconds=rt.settings.anonymous_max_delay_seconds,
        )
        is None
    ):
        for item in group:
            comment_queue(rt).add(item)
        for change in edits:
            comment_queue(rt).add_change(change)
        comment_queue(rt).set_waited(petition_id, waited + 1)
        return 0
    for change in edits:
        comment = db.get_one(Comment, change.comment_id)
        if comment.is_visible and change.body is not None:
            _apply_edit(db, comment, change.body, at)
    written = len(write_group(db, petition, group, at))
    if authors < rt.settings.min_group_size:
        why = (
            "the server was restarting, and they wait only in its memory"
            if final
            else "the discussion closed or was locked"
            if closing
            else "they had waited as long as they are held"
        )
        db.add(
            PetitionEvent(
                petition_id=petition_id,
                kind="small_comment_batch",
                at=at,
                actor_id=None,
                public=True,
                detail=(
                    "Anonymous comments or edits from fewer colleagues than the minimum group size "
                    f"were published together, because {why}: their authors are hidden among "
                    "fewer colleagues."
                ),
            )
        )
    comment_queue(rt).set_waited(petition_id, 0)
    return written


# -- the author's rights, by credential --------------------------------------------------------------------


def _authored(db: Session, comment_id: int, message: bytes) -> Comment:
    comment = db.get(Comment, comment_id)
    if comment is None or not comment.is_anonymous:
        raise NotFound(N_("There is no such comment."))
    if comment.state is CommentState.deleted:  # its author tag went with its words
        raise Conflict(N_("This comment is already deleted."))
    if comment.author_proof is None or not hmac.compare_digest(comment.author_proof, author_tag(message)):
        raise Forbidden(N_("Only the author can change this comment: this credential did not write it."))
    return comment


def _apply_edit(db: Session, comment: Comment, body: str, at: datetime) -> None:
    page_changed(db, comment.petition_id)
    # Only the hour, like the comment itself; every edit keeps history (there is no finer edit window to use).
    db.add(CommentRevision(comment_id=comment.id, body_html=comment.body_html, replaced_at=at))
    comment.body, comment.body_html, comment.edited_at = body, render_comment(body), at
    db.flush()


def edit(*, db: Session, rt: Runtime, comment_id: int, message: bytes, signature: bytes, body: str) -> bool:
    """Checked now, applied by the batch (at once when batching is off). True when it waits for the batch."""
    comment = _authored(db, comment_id, message)
    if not comment.is_visible:
        raise Conflict(N_("This comment was removed and can no longer be edited."))
    petition = _credential(db, rt, comment.petition_id, message, signature)
    _require_open_discussion(petition)
    if rt.settings.anonymous_batch_seconds == 0:
        _apply_edit(db, comment, body, to_the_hour(rt.clock.now()))
        return False
    _limit(rt, comment.author_proof or "")
    comment_queue(rt).add_change(
        Change(ref=secrets.token_hex(16), comment_id=comment.id, author_tag=comment.author_proof or "", body=body)
    )
    return True


def delete(*, db: Session, rt: Runtime, comment_id: int, message: bytes) -> bool:
    """Always allowed, even once the discussion closed and its key is gone: the message is the proof. Applied by
    the next hourly batch (at once when batching is off): at once, its moment would be public. True when queued."""
    comment = _authored(db, comment_id, message)
    if rt.settings.anonymous_batch_seconds == 0:
        remove(db=db, comment=comment)
        return False
    comment_queue(rt).add_change(
        Change(ref=secrets.token_hex(16), comment_id=comment.id, author_tag=comment.author_proof or "", body=None)
    )
    return True
