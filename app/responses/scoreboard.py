"""The public scoreboard: how leadership answers petitions that reached their response threshold, per month.

Two queries whatever the number of petitions: the three timestamps of every petition in the window, and the
commitments counted by status. The months are bucketed in Python, so the same code runs on SQLite and
PostgreSQL without dialect-specific date functions.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.models.lifecycle import TALLIED_STATES
from app.models.petitions import Petition
from app.models.responses import Commitment, CommitmentStatus

# What anyone may read and that went through moderation: rejected petitions never open, so never reach a
# threshold; hidden ones are out of public view, drafts and petitions in the queue have no signatures yet.
SCOREBOARD_STATES = TALLIED_STATES
MAX_MONTHS = 24
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SECONDS_PER_DAY = 86_400

# The chart's series, bottom to top, with colours from the site's palette: each has at least 3:1 contrast
# against the white background (WCAG 1.4.11) and they differ in lightness as well as hue.
SERIES = (
    ("answered_on_time", "Answered on time", "#0b5cad"),
    ("answered_late", "Answered late", "#b35900"),
    ("unanswered_overdue", "Unanswered, overdue", "#a1262b"),
    ("unanswered_within_time", "Unanswered, still within time", "#5f6874"),
)


@dataclass(frozen=True)
class Tally:
    """Petitions that reached their response threshold, by what became of them."""

    reached: int = 0
    answered_on_time: int = 0
    answered_late: int = 0
    unanswered_overdue: int = 0
    unanswered_within_time: int = 0

    @property
    def answered(self) -> int:
        return self.answered_on_time + self.answered_late

    @property
    def unanswered(self) -> int:
        return self.unanswered_overdue + self.unanswered_within_time


@dataclass(frozen=True)
class MonthTally(Tally):
    month: str = ""  # "2026-11"
    label: str = ""  # "Nov 2026"


@dataclass(frozen=True)
class ResponseTimes:
    """Days from reaching the threshold to the first response, over the answered petitions."""

    answered: int
    median_days: float | None
    p90_days: float | None


@dataclass(frozen=True)
class CommitmentTally:
    total: int = 0
    planned: int = 0
    in_progress: int = 0
    done: int = 0
    dropped: int = 0
    overdue: int = 0  # planned or in progress with a due date before today


@dataclass(frozen=True)
class ChartSeries:
    name: str
    values: list[int]
    colour: str


@dataclass(frozen=True)
class Chart:
    title: str
    labels: list[str]
    series: list[ChartSeries]


@dataclass(frozen=True)
class Scoreboard:
    generated_at: datetime
    first_month: date
    months: list[MonthTally]
    totals: Tally
    response_times: ResponseTimes
    commitments: CommitmentTally

    @property
    def empty(self) -> bool:
        return self.totals.reached == 0

    @property
    def on_time_share(self) -> float | None:
        """Answered on time, as a share of the petitions whose outcome is known (answered, or past due)."""
        settled = self.totals.answered + self.totals.unanswered_overdue
        return round(self.totals.answered_on_time / settled, 3) if settled else None


def _month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def _month_start(index: int) -> datetime:
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _days(start: datetime, end: datetime) -> float:
    # A response posted before the threshold was reached counts as immediate, not as negative time.
    return max(0.0, (end - start).total_seconds() / SECONDS_PER_DAY)


def nearest_rank(values: list[float], share: float) -> float:
    """The smallest value with at least `share` of the values at or below it: "90% were answered within"."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def _outcome(*, due: datetime | None, first_response: datetime | None, now: datetime) -> str:
    # Without a due date nothing can be late: answered counts as on time, unanswered as within time.
    if first_response is not None:
        return "answered_late" if due is not None and first_response > due else "answered_on_time"
    return "unanswered_overdue" if due is not None and due < now else "unanswered_within_time"


def _commitments(*, db: Session, today: date, states: list[str]) -> CommitmentTally:
    overdue = case((Commitment.due_on < today, 1), else_=0)
    rows = db.execute(
        select(Commitment.status, func.count(), func.coalesce(func.sum(overdue), 0))
        .join(Petition, Petition.id == Commitment.petition_id)
        .where(Petition.state.in_(states))
        .group_by(Commitment.status)
    )
    by_status: Counter[str] = Counter()
    overdue_count = 0
    for status, count, past_due in rows:
        by_status[status] += count
        if status in (CommitmentStatus.planned, CommitmentStatus.in_progress):
            overdue_count += int(past_due)
    return CommitmentTally(
        total=sum(by_status.values()),
        planned=by_status[CommitmentStatus.planned],
        in_progress=by_status[CommitmentStatus.in_progress],
        done=by_status[CommitmentStatus.done],
        dropped=by_status[CommitmentStatus.dropped],
        overdue=overdue_count,
    )


def scoreboard(*, db: Session, now: datetime, months: int = 12) -> Scoreboard:
    """The last `months` calendar months (UTC, the current one included), by the month of the threshold."""
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be between 1 and {MAX_MONTHS}")
    now = now.astimezone(UTC)
    last = _month_index(now.year, now.month)
    first = last - months + 1
    states = sorted(state.value for state in SCOREBOARD_STATES)
    rows = db.execute(
        select(Petition.response_threshold_reached_at, Petition.response_due_at, Petition.first_response_at).where(
            Petition.state.in_(states),
            Petition.response_threshold_reached_at >= _month_start(first),
            Petition.response_threshold_reached_at < _month_start(last + 1),
        )
    )

    counts: dict[int, Counter[str]] = {index: Counter() for index in range(first, last + 1)}
    response_days: list[float] = []
    for reached_at, due_at, first_response_at in rows:
        assert reached_at is not None  # the query's range leaves out petitions that never reached it
        bucket = counts[_month_index(reached_at.year, reached_at.month)]
        bucket["reached"] += 1
        bucket[_outcome(due=due_at, first_response=first_response_at, now=now)] += 1
        if first_response_at is not None:
            response_days.append(_days(reached_at, first_response_at))

    month_tallies = [
        MonthTally(
            month=f"{index // 12:04d}-{index % 12 + 1:02d}",
            label=f"{MONTH_NAMES[index % 12]} {index // 12}",
            **counts[index],
        )
        for index in range(first, last + 1)
    ]
    totals = Tally(**sum(counts.values(), Counter()))
    times = ResponseTimes(
        answered=len(response_days),
        median_days=round(statistics.median(response_days), 1) if response_days else None,
        p90_days=round(nearest_rank(response_days, 0.9), 1) if response_days else None,
    )
    return Scoreboard(
        generated_at=now,
        first_month=_month_start(first).date(),
        months=month_tallies,
        totals=totals,
        response_times=times,
        commitments=_commitments(db=db, today=now.date(), states=states),
    )


def chart(board: Scoreboard) -> Chart:
    """The per-month outcomes as stacked bars; the page draws them, the API returns them."""
    return Chart(
        title="Petitions that reached their response threshold, by month and outcome",
        labels=[month.label for month in board.months],
        series=[
            ChartSeries(name=name, values=[getattr(month, field) for month in board.months], colour=colour)
            for field, name, colour in SERIES
        ],
    )
