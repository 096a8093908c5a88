"""A poll's answers counted per department or location (issue #25): what the breakdown at close is made of.

Only a poll put to two groups or more has one (app/ballots/audiences.has_breakdown). Each answer's group is sealed
on its row (app/ballots/answers.py) and opened here, and only here, once the poll has closed and its last batch is
in: before, nothing per group is counted at all, on any surface, whether or not the result shows live (a series of
breakdowns read while answers arrive tells by differencing which group each new answer came from). The counts are
raw: app/reports/ballots.py passes them through the reports' suppression before anyone sees them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ballots import answers, audiences, counting, result_cache, service
from app.ballots import log as ballot_log
from app.ballots.service import Hidden
from app.core.runtime import Runtime
from app.models.ballots import Ballot, BallotAnswer, BallotKind, BallotState
from app.models.signatures import GroupKind


@dataclass(frozen=True)
class GroupRow:
    group_id: int | None  # None: the answers counted under no group ("Not given")
    kind: GroupKind | None
    name: str
    counts: tuple[int, ...]  # per option position (ranked: first preferences)


@dataclass(frozen=True)
class GroupCounts:
    """Every group the poll is put to, by kind and name, then the answers under none: raw, unsuppressed."""

    rows: tuple[GroupRow, ...]
    totals: tuple[int, ...]  # per option: what the published result says


class GroupCountCache(result_cache.KeptByHead[GroupCounts]):
    """Opened and counted once per log head per process: the first read at 100,000 answers took 0.54 s of CPU on
    PostgreSQL and 0.76 s on SQLite (each row's seal opened), the next ones 1 to 7 ms."""


def shown(ballot: Ballot, rt: Runtime) -> bool:
    """Whether per-group figures may be read now: closed, its last batch in, and the minimum of answers met."""
    now = rt.clock.now()
    return (
        service.state(ballot, now) is BallotState.closed
        and now >= service.results_final_at(ballot, rt)
        and ballot.answers_counted >= ballot.min_answers
    )


def group_counts(db: Session, rt: Runtime, ballot: Ballot) -> GroupCounts | counting.NotEnough | Hidden | None:
    """None for a poll without a breakdown; Hidden until it is closed and final; NotEnough below its minimum of
    answers; else the raw counts (for app/reports/ballots.py to suppress)."""
    if not audiences.has_breakdown(db=db, ballot=ballot):
        return None
    now = rt.clock.now()
    if service.state(ballot, now) is not BallotState.closed or now < service.results_final_at(ballot, rt):
        return Hidden(until=service.results_final_at(ballot, rt))
    if not shown(ballot, rt):
        return counting.NotEnough(min_answers=ballot.min_answers)
    cache = rt.part(GroupCountCache, GroupCountCache)
    return result_cache.kept(db, ballot, cache, lambda: _count(db, rt, ballot))


def _count(db: Session, rt: Runtime, ballot: Ballot) -> GroupCounts:
    options = len(service.labels(db=db, ballot=ballot))
    groups = audiences.audience_groups(db=db, ballot=ballot)
    open_group = rt.sealer.opener(context=answers.group_context(ballot.id))
    tallies: dict[int | None, Counter[int]] = {group.id: Counter() for group in groups}
    tallies[None] = Counter()
    for choice_text, sealed in db.execute(
        select(BallotAnswer.choice, BallotAnswer.sealed_group).where(
            BallotAnswer.ballot_id == ballot.id, BallotAnswer.superseded.is_(False)
        )
    ):
        group_id = None if sealed is None else int(open_group(bytes(sealed))) or None
        choice = ballot_log.parse_choice(choice_text)
        chosen = choice[:1] if ballot.kind is BallotKind.ranked else set(choice)
        # A group the poll is no longer put to cannot happen (its groups are fixed at creation); counted as none.
        tally = tallies.get(group_id, tallies[None])
        for position in chosen:
            tally[position] += 1
    rows = [
        GroupRow(group.id, group.kind, group.name, tuple(tallies[group.id][p] for p in range(options)))
        for group in groups
    ]
    rows.append(GroupRow(None, None, "Not given", tuple(tallies[None][p] for p in range(options))))
    totals = tuple(sum(row.counts[p] for row in rows) for p in range(options))
    return GroupCounts(rows=tuple(rows), totals=totals)
