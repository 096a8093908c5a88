"""Answering a ballot without an account: the credential proves the right to answer, the batch hides when.

1. The wallet sends (message, signature, choice) without cookies. The server checks the signature under THIS
   ballot's key (RFC 9474), the ballot is open, and the choice is one the ballot allows, and answers 202.
2. The answer waits in this process's memory (app/anonymous/queue.py's WaitingQueue, shared with anonymous
   signatures): a later answer with the same credential replaces a waiting one, so only the last of a batch is
   ever written. No database row, no log line, no time is kept before the batch.
3. A batch writes each ballot's group shuffled, when app/anonymous/batching.py's rule lets it out (k answers, or
   the maximum delay, or the ballot closing): random row ids, the batch's hour only. An answer with a credential
   counted before becomes its next revision and supersedes the earlier one (only the last counts); each is a leaf
   of the ballot's log, and the batch ends with a signed checkpoint. With batching off (tests, development) the
   answer is written at once.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.anonymous import batching
from app.anonymous.queue import WaitingQueue
from app.anonymous.wallet import MESSAGE_MAX, MESSAGE_MIN
from app.ballots import audiences, exchange, limits, service
from app.ballots import log as ballot_log
from app.core import blindrsa
from app.core.clock import to_the_hour
from app.core.errors import AppError, Conflict, NotFound
from app.core.i18n import N_, Message
from app.core.logging import COARSE_TIME
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.models.ballots import Ballot, BallotAnswer, BallotKind, BallotState

logger = logging.getLogger("undersigned.ballots")


@dataclass(frozen=True)
class Answer:
    ballot_id: int
    message: bytes
    signature: bytes
    credential: str
    choice: tuple[int, ...]
    group: int | None = None  # the department or location it counts under at close (app/ballots/audiences.py)


class BallotQueue(WaitingQueue[Answer]):
    """Accepted answers waiting for the next batch, in this process's memory only (never Redis, never the
    database: a copy of either would date an answer). A wallet that does not see its answer published sends it
    again."""

    def __init__(self) -> None:
        super().__init__(lambda answer: (answer.ballot_id, answer.credential))


def ballot_queue(rt: Runtime) -> BallotQueue:
    return rt.part(BallotQueue, BallotQueue)


def credential_of(message: bytes) -> str:
    return hashlib.sha256(message).hexdigest()


class Refused(AppError):
    """An answer that cannot count as sent (400): nothing is queued."""

    status_code = 400
    code = "bad_answer"
    title = N_("That answer cannot be counted")


def check_choice(ballot: Ballot, option_count: int, choice: list[int]) -> tuple[int, ...]:
    """The choice as the ballot allows it, or a plain refusal."""
    if not choice:
        raise Refused(N_("Choose an option before sending."), fields={"choice": N_("Choose an option.")})
    if any(not 0 <= position < option_count for position in choice):
        raise Refused(
            N_("That option does not exist on this poll."),
            fields={"choice": Message(N_("Options are numbered 0 to %(last)s."), last=option_count - 1)},
        )
    if len(set(choice)) != len(choice):
        raise Refused(
            N_("Rank each option once.") if ballot.kind is BallotKind.ranked else N_("Choose each option once."),
            fields={"choice": N_("An option appears twice.")},
        )
    if len(choice) > ballot.max_choices:
        raise Refused(
            Message(N_("This poll takes at most %(max)s choices."), max=ballot.max_choices),
            fields={"choice": N_("Too many choices.")},
        )
    # Only a ranking's order means something: a set of choices is written in one order, so equal answers look equal.
    return tuple(choice) if ballot.kind is BallotKind.ranked else tuple(sorted(choice))


def check_credential(ballot: Ballot, message: bytes, signature: bytes) -> str:
    if not MESSAGE_MIN <= len(message) <= MESSAGE_MAX:
        raise Refused(
            N_("Please correct the highlighted fields."),
            fields={
                "message": Message(
                    N_("A credential's message is %(min)s to %(max)s bytes."), min=MESSAGE_MIN, max=MESSAGE_MAX
                )
            },
        )
    try:
        blindrsa.verify(service.public_key(ballot), message, signature)
    except blindrsa.BlindSignatureError:
        raise Refused(
            N_("This credential is not valid for this poll: it was not issued by its key."),
            fields={"signature": N_("Does not verify under this poll's key.")},
        ) from None
    return credential_of(message)


# A group id sealed as ten digits, and "none" as ten zeros (ids start at 1): every row's seal is the same length,
# so a copy of the database cannot tell answers counted under a group from the others.
GROUP_DIGITS = 10
NO_GROUP = "0" * GROUP_DIGITS


def group_context(ballot_id: int) -> str:
    """The sealing context of a ballot's answers' groups: a seal moved to another ballot's row does not open."""
    return f"ballot-answer-group:{ballot_id}"


def seal_group(rt: Runtime, ballot_id: int, group: int | None) -> bytes:
    plain = NO_GROUP if group is None else f"{group:0{GROUP_DIGITS}d}"
    return rt.sealer.seal(plain, context=group_context(ballot_id))


def answer_group(rt: Runtime, row: BallotAnswer) -> int | None:
    """The group a counted answer was sent under (None: none, or counted before breakdowns existed)."""
    if row.sealed_group is None:
        return None
    return int(rt.sealer.open(bytes(row.sealed_group), context=group_context(row.ballot_id))) or None


def _latest(db: Session, ballot_id: int, credential: str) -> BallotAnswer | None:
    return db.scalar(
        select(BallotAnswer)
        .where(BallotAnswer.ballot_id == ballot_id, BallotAnswer.credential == credential)
        .order_by(BallotAnswer.revision.desc())
        .limit(1)
    )


def submit(
    *,
    db: Session,
    rt: Runtime,
    ballot_id: int,
    message: bytes,
    signature: bytes,
    choice: list[int],
    group: int | None = None,
) -> int:
    """Accept an answer for the next batch; returns the batch interval in seconds (0: counted already, as with
    batching off). Refusals: no such ballot (404), not open (409), a credential of another ballot or a forgery
    (400), too many answers with this credential this hour (429), a choice the ballot does not allow (400), a
    group it may not count under (400, app/ballots/audiences.check_answer_group), the same answer (choice and
    group) as the one counted for this credential (409)."""
    ballot = service.get_or_404(db=db, ballot_id=ballot_id)
    if not service.visible_to(db=db, rt=rt, ballot=ballot, user=None):
        raise NotFound(N_("There is no such poll."))  # its petition was hidden: it takes no answer meanwhile
    now = rt.clock.now()
    current = service.state(ballot, now)
    if current is BallotState.scheduled:
        raise Conflict(N_("This poll is not open yet."))
    if current is BallotState.closed:
        raise Conflict(N_("This poll has closed: answers are no longer taken."))
    credential = check_credential(ballot, message, signature)
    # Counted once the credential verifies, before anything waits or is written (app/ballots/limits.py).
    limits.hit(rt, action=limits.ANSWER, ballot_id=ballot.id, credential=credential)
    checked = check_choice(ballot, len(service.labels(db=db, ballot=ballot)), choice)
    if group is not None:
        audiences.check_answer_group(db=db, rt=rt, ballot=ballot, group_id=group)
    latest = _latest(db, ballot.id, credential)
    if latest is not None and _same(rt, latest, checked, group):
        raise Conflict(N_("This answer is already counted. To change it, choose differently."))
    answer = Answer(ballot.id, message, signature, credential, checked, group)
    ballot_queue(rt).replace(answer)
    if rt.settings.anonymous_batch_seconds == 0:
        ballot_queue(rt).discard(answer)
        _write_group(db, rt, ballot.id, [answer])
        return 0
    return int(rt.settings.anonymous_batch_seconds)


def _same(rt: Runtime, row: BallotAnswer, choice: tuple[int, ...], group: int | None) -> bool:
    """Whether an answer is the one already counted: its choice and its group (a new group is a change)."""
    return ballot_log.parse_choice(row.choice) == list(choice) and answer_group(rt, row) == group


def write_batch(*, sessions: sessionmaker[Session], rt: Runtime) -> int:
    """Write the queued answers and exchanges (app/ballots/exchange.py), shuffled, each ballot's group in one
    transaction, when the batching rule lets it out (the exchanges count with the answers: they are written
    together, so each hides among both); a group held back goes back to the queues (unless a later answer replaced
    it). Returns how many answers were written."""
    answers = ballot_queue(rt).take()
    exchanges = exchange.exchange_queue(rt).take()
    shuffle = random.SystemRandom().shuffle
    shuffle(answers)
    shuffle(exchanges)
    by_ballot: dict[int, tuple[list[Answer], list[exchange.Waiting]]] = {}
    for answer in answers:
        by_ballot.setdefault(answer.ballot_id, ([], []))[0].append(answer)
    for item in exchanges:
        by_ballot.setdefault(item.ballot_id, ([], []))[1].append(item)
    written = 0
    for ballot_id, (group, waiting) in by_ballot.items():
        try:
            with sessions.begin() as db:
                # An exchange another process's batch wrote already (a retry sent to both) writes nothing here, so
                # it hides nobody: counted towards k, it would let a smaller group out. Read under the ballot's lock,
                # so another process's batch writing it this moment is seen.
                if waiting:
                    db.scalar(select(Ballot.id).where(Ballot.id == ballot_id).with_for_update())
                    waiting = exchange.unwritten(db, ballot_id, waiting)
                    if not group and not waiting:
                        continue  # nothing left to write: no group is held, and no wait starts
                if _publish_reason(db, rt, ballot_id, len(group) + len(waiting), exchanges=bool(waiting)) is None:
                    ballot_queue(rt).restore(group)
                    exchange.exchange_queue(rt).restore(waiting)
                    continue
                written += _write_group(db, rt, ballot_id, group, waiting)
            ballot_queue(rt).release(ballot_id)
        except Exception:
            # Back in the queue for the next batch: accepted answers are not dropped for one bad moment.
            ballot_queue(rt).restore(group)
            exchange.exchange_queue(rt).restore(waiting)
            logger.exception(
                "writing a batch of ballot answers failed; it is kept for the next one", extra={COARSE_TIME: True}
            )
    return written


def waiting(rt: Runtime) -> int:
    """Answers and exchanges waiting in this process for a batch."""
    return len(ballot_queue(rt)) + len(exchange.exchange_queue(rt))


def _hour_number(moment: datetime) -> int:
    return int(moment.timestamp() // 3600)


def _publish_reason(
    db: Session, rt: Runtime, ballot_id: int, count: int, *, exchanges: bool = False
) -> batching.Reason | None:
    """Whether a ballot's group goes out now. A group that holds exchanges counts as closing one batch earlier: its
    signers still have to come back for their credential and send their answer before the close."""
    settings = rt.settings
    if not settings.anonymous_batch_seconds:
        return batching.Reason.full
    now = rt.clock.now()
    ballot = db.get(Ballot, ballot_id)
    horizon = settings.anonymous_batch_seconds * (2 if exchanges else 1)
    closing = (
        ballot is None
        or service.state(ballot, now) is BallotState.closed
        or ballot.closes_at <= now + timedelta(seconds=horizon)
    )
    if ballot is not None and ballot.results_live and not closing and count < settings.min_group_size:
        # Live figures read before and after a batch differ by that batch's answers: a group below k let out by
        # the maximum delay would publish its few choices (and its log leaves) to anyone polling. It waits for
        # company or the close instead.
        ballot_queue(rt).held_since(ballot_id, _hour_number(now))
        return None
    since = ballot_queue(rt).held_since(ballot_id, _hour_number(now))
    return batching.publish_reason(
        count=count,
        hours_waited=batching.hours_between(since, _hour_number(now)),
        closing=closing,
        min_group_size=settings.min_group_size,
        max_delay_seconds=settings.anonymous_max_delay_seconds,
    )


def _write_group(
    db: Session, rt: Runtime, ballot_id: int, group: list[Answer], exchanges: list[exchange.Waiting] | None = None
) -> int:
    """Write one ballot's exchanges and answers (accepted while it was open, so they count even if it closed since):
    the exchanges in one statement; each answer a new revision of its credential, superseding the last, a leaf of
    the log; then the counters and a checkpoint. The ballot's row is locked, so two processes' batches append one
    after the other."""
    ballot = db.scalar(select(Ballot).where(Ballot.id == ballot_id).with_for_update())
    if ballot is None:
        return 0
    db.refresh(ballot)
    exchanged = exchange.write_waiting(db, ballot_id, exchanges or [])
    hour = to_the_hour(rt.clock.now())
    # Each credential's counted answer, a few hundred credentials a query rather than a round trip each.
    counted: dict[str, BallotAnswer] = {}
    credentials = [answer.credential for answer in group]
    for start in range(0, len(credentials), 500):
        for row in db.scalars(
            select(BallotAnswer).where(
                BallotAnswer.ballot_id == ballot_id,
                BallotAnswer.superseded.is_(False),
                BallotAnswer.credential.in_(credentials[start : start + 500]),
            )
        ):
            counted[row.credential] = row
    rows: list[BallotAnswer] = []
    new_credentials = 0
    for answer in group:
        latest = counted.get(answer.credential)
        if latest is not None and _same(rt, latest, answer.choice, answer.group):
            continue  # the same answer again (sent to two processes, or resent): nothing changes
        if latest is None:
            new_credentials += 1
        else:
            latest.superseded = True
        rows.append(
            BallotAnswer(
                id=secrets.token_hex(16),
                ballot_id=ballot_id,
                credential=answer.credential,
                message=answer.message,
                signature=answer.signature,
                revision=(latest.revision if latest is not None else 0) + 1,
                choice=ballot_log.canonical_choice(list(answer.choice)),
                counted_hour=hour,
                superseded=False,
                log_index=-1,
                sealed_group=seal_group(rt, ballot_id, answer.group),
            )
        )
    if not rows:
        if exchanged:  # the credentials issued moved: the checkpoint says so with this batch
            ballot_log.checkpoint(db, rt, ballot, rt.clock.now())
            if ballot.petition_id is not None:
                page_changed(db, ballot.petition_id)
        return 0
    db.flush()  # the superseded marks first: each credential keeps one counted row at every moment
    indices = ballot_log.append(
        db,
        ballot_id,
        [
            ballot_log.answer_entry(
                message=row.message,
                signature=row.signature,
                revision=row.revision,
                choice=ballot_log.parse_choice(row.choice),
            )
            for row in rows
        ],
    )
    for row, index in zip(rows, indices, strict=True):
        row.log_index = index
    db.add_all(rows)
    db.execute(
        update(Ballot)
        .where(Ballot.id == ballot_id)
        .values(answers_counted=Ballot.answers_counted + new_credentials)
        .execution_options(synchronize_session=False)
    )
    db.flush()
    db.refresh(ballot)
    ballot_log.checkpoint(db, rt, ballot, rt.clock.now())
    if ballot.petition_id is not None:
        page_changed(db, ballot.petition_id)
    return len(rows)


def small_groups(*, db: Session, rt: Runtime, ballot_id: int) -> list[tuple[datetime, int]]:
    """The hours in which fewer than k answers were written (the closing batch, or a group the maximum delay let
    out): the people who sent them hide among fewer than k, and a database's rows or the checkpoints' tree sizes
    say so to whoever reads them, so the poll's page says it to everyone (as a petition's timeline does for a small
    batch of signatures). Superseded revisions count: they are rows of that hour too. Nothing with batching off."""
    k = rt.settings.min_group_size
    if not rt.settings.anonymous_batch_seconds:
        return []
    rows = db.execute(
        select(BallotAnswer.counted_hour, func.count())
        .where(BallotAnswer.ballot_id == ballot_id)
        .group_by(BallotAnswer.counted_hour)
        .having(func.count() < k)
        .order_by(BallotAnswer.counted_hour)
    )
    return [(hour, count) for hour, count in rows]


def closing_soon(ballot: Ballot, rt: Runtime) -> bool:
    """Whether an answer sent now would go out with the closing batch, whatever its size (`_publish_reason`)."""
    seconds = rt.settings.anonymous_batch_seconds
    return bool(seconds) and ballot.closes_at <= rt.clock.now() + timedelta(seconds=seconds)


def counted(*, db: Session, ballot_id: int) -> int:
    """Distinct credentials counted, from the answers themselves (what answers_counted must equal)."""
    return (
        db.scalar(select(func.count(func.distinct(BallotAnswer.credential))).where(BallotAnswer.ballot_id == ballot_id))
        or 0
    )
