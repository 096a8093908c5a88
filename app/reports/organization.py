"""The organization-wide report: petitions by status, signatures per month, and how leadership responds.

The public version counts only petitions everyone can see; the admins' version counts every state (drafts,
petitions waiting for sponsors or moderators, hidden and rejected ones). Both are counts, never names.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.lifecycle import LABELS, VISIBLE_STATES, PetitionState
from app.models.petitions import Petition
from app.models.signatures import Signature
from app.reports import exports
from app.responses import scoreboard as scoreboards


@dataclass(frozen=True)
class StateCount:
    state: str
    label: str
    petitions: int


@dataclass(frozen=True)
class MonthCount:
    month: str  # "2026-11"
    label: str  # "Nov 2026"
    signatures: int


@dataclass(frozen=True)
class OrganizationReport:
    generated_at: datetime
    everything: bool  # the admins' version: every state, not only the visible ones
    by_state: tuple[StateCount, ...]
    signatures_by_month: tuple[MonthCount, ...]
    scoreboard: scoreboards.Scoreboard


def build(*, db: Session, now: datetime, months: int = 12, everything: bool = False) -> OrganizationReport:
    board = scoreboards.scoreboard(db=db, now=now, months=months)
    states = list(PetitionState) if everything else [state for state in PetitionState if state in VISIBLE_STATES]
    counts = dict(
        db.execute(
            select(Petition.state, func.count())
            .where(Petition.state.in_([s.value for s in states]))
            .group_by(Petition.state)
        ).all()
    )
    first = datetime.combine(board.first_month, datetime.min.time(), tzinfo=UTC)
    # Signatures of the petitions counted here, by the month they were given; the hours are grouped in SQL.
    per_hour = db.execute(
        select(Signature.signed_hour, func.count())
        .join(Petition, Petition.id == Signature.petition_id)
        .where(
            Signature.invalidation_id.is_(None),
            Signature.signed_hour >= first,
            Petition.state.in_([s.value for s in states]),
        )
        .group_by(Signature.signed_hour)
    )
    per_month: Counter[str] = Counter()
    for hour, count in per_hour:
        per_month[f"{hour:%Y-%m}"] += count
    return OrganizationReport(
        generated_at=now,
        everything=everything,
        by_state=tuple(
            StateCount(state=state.value, label=LABELS[state], petitions=counts.get(state, 0)) for state in states
        ),
        signatures_by_month=tuple(
            MonthCount(month=month.month, label=month.label, signatures=per_month.get(month.month, 0))
            for month in board.months
        ),
        scoreboard=board,
    )


def as_csv(report: OrganizationReport) -> str:
    out = io.StringIO()
    writer = exports.csv_writer(out)  # text quoted, like every export
    writer.writerow(["section", "label", "value"])
    for state in report.by_state:
        writer.writerow(["petitions by status", state.label, state.petitions])
    for month in report.signatures_by_month:
        writer.writerow(["signatures by month", month.month, month.signatures])
    totals = report.scoreboard.totals
    for name in ("reached", "answered_on_time", "answered_late", "unanswered_overdue", "unanswered_within_time"):
        writer.writerow(["responses", name.replace("_", " "), getattr(totals, name)])
    times = report.scoreboard.response_times
    writer.writerow(["responses", "median days to respond", "" if times.median_days is None else times.median_days])
    writer.writerow(["responses", "90% answered within days", "" if times.p90_days is None else times.p90_days])
    return out.getvalue()
