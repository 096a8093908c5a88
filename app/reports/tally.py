"""A petition's tally report, read in one transaction: the numbers every export and page shows."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.database import read_consistently
from app.core.runtime import Runtime
from app.models.lifecycle import PetitionState
from app.models.petitions import Petition
from app.models.responses import Commitment, PetitionResponse
from app.models.signatures import GroupKind, Signature, SignerGroup, Visibility
from app.petitions import service as petitions
from app.reports.ballots import petition_ratifications
from app.reports.model import Breakdown, CommitmentSummary, ResponseSummary, TallyReport, Threshold
from app.reports.suppression import suppress
from app.responses.chart import bar_chart_svg

NOT_GIVEN = "Not given"


def build(*, db: Session, rt: Runtime, petition: Petition, public: bool = False) -> TallyReport:
    """The report, read from one snapshot of the database; `public` is the view for anyone (see below).

    Small-group suppression protects one table at a time, not a series of them: someone who reloads the
    department table while a colleague signs sees which group went up by one. So while a petition is open, the
    public view has no department or location tables and no hourly series; they are published once it closes,
    when the numbers stop moving. Organizers, who see the names signers showed them anyway, always get them.

    The public view is the same for every reader, and counting a million signatures takes the database most of a
    second, so each server process keeps it for `tally_cache_seconds`: one reader recounts while the others read
    the previous count, whose `generated_at` says when it was made.
    """
    ttl = rt.settings.tally_cache_ttl
    if public and ttl:
        key = f"public-tally:{petition.id}:{petition.state}:{petition.version}"
        report: TallyReport = rt.cache.get_shared(key, lambda: _build(db, rt, petition, public=True), ttl=ttl)
        return report
    return _build(db, rt, petition, public=public)


def _build(db: Session, rt: Runtime, petition: Petition, *, public: bool) -> TallyReport:
    read_consistently(db)
    withheld = public and petition.state == PetitionState.open
    counted = Signature.invalidation_id.is_(None)
    by_visibility = {visibility.value: 0 for visibility in Visibility}
    voided = 0
    hours: Counter[datetime] = Counter()
    # One pass over the petition's signatures for every count the report gives.
    for hour, visibility, is_counted, count in db.execute(
        select(Signature.signed_hour, Signature.visibility, counted, func.count())
        .where(Signature.petition_id == petition.id)
        .group_by(Signature.signed_hour, Signature.visibility, counted)
    ):
        if is_counted:
            by_visibility[visibility] = by_visibility.get(visibility, 0) + count
            hours[hour] += count
        else:
            voided += count
    total = sum(by_visibility.values())
    by_hour = tuple(sorted(hours.items()))
    groups = petition.collect_attributes and not withheld
    days: Counter[date] = Counter()
    for hour, count in by_hour:
        days[hour.date()] += count
    return TallyReport(
        petition_id=petition.id,
        title=petition.title,
        ask=petition.ask,
        background=petition.background,
        decision_maker=petition.decision_maker,
        version=petition.version,
        content_hash=petitions.content_hash(
            title=petition.title,
            ask=petition.ask,
            background=petition.background,
            decision_maker=petition.decision_maker,
        ),
        state=petition.state,
        opened_at=petition.opened_at,
        closed_at=petition.closed_at,
        generated_at=rt.clock.now(),
        signature_count=total,
        withdrawal_count=petition.withdrawal_count,
        voided_count=voided,
        by_visibility=by_visibility,
        thresholds=tuple(
            Threshold(kind=kind, signatures=signatures, reached_at=reached_at)
            for kind, signatures, reached_at in (
                ("response", petition.response_threshold, petition.response_threshold_reached_at),
                ("escalation", petition.escalation_threshold, petition.escalation_threshold_reached_at),
            )
            if signatures
        ),
        by_day=tuple(sorted(days.items())),
        by_hour=() if public else by_hour,
        departments=_breakdown(db, rt, petition, GroupKind.department) if groups else None,
        locations=_breakdown(db, rt, petition, GroupKind.location) if groups else None,
        withheld_while_open=withheld and petition.collect_attributes,
        min_group_size=rt.settings.min_group_size,
        ratifications=tuple(petition_ratifications(db, rt, petition)),
        responses=tuple(
            ResponseSummary(
                at=response.created_at, status=response.status, summary=response.summary, details=response.details
            )
            for response in db.scalars(
                select(PetitionResponse)
                .where(PetitionResponse.petition_id == petition.id)
                .order_by(PetitionResponse.created_at, PetitionResponse.id)
            )
        ),
        commitments=tuple(
            CommitmentSummary(
                text=commitment.text, owner=commitment.owner, due_on=commitment.due_on, status=commitment.status
            )
            for commitment in db.scalars(
                select(Commitment)
                .where(Commitment.petition_id == petition.id)
                .order_by(Commitment.created_at, Commitment.id)
            )
        ),
    )


def _breakdown(db: Session, rt: Runtime, petition: Petition, kind: GroupKind) -> Breakdown:
    """Every group of the kind (a group nobody signed from shows 0), then "Not given"; suppressed."""
    column = Signature.department_id if kind is GroupKind.department else Signature.location_id
    counts = dict(
        db.execute(
            select(column, func.count())
            .where(Signature.petition_id == petition.id, Signature.invalidation_id.is_(None))
            .group_by(column)
        ).all()
    )
    groups = db.execute(
        select(SignerGroup.id, SignerGroup.name, SignerGroup.active)
        .where(SignerGroup.kind == kind.value)
        .order_by(SignerGroup.name)
    ).all()
    cells = [(name, counts.get(group_id, 0)) for group_id, name, active in groups if active or group_id in counts]
    cells.append((NOT_GIVEN, counts.get(None, 0)))
    return Breakdown(
        kind=kind.value,
        cells=suppress(cells, min_group_size=rt.settings.min_group_size),
        total=sum(count for _, count in cells),
    )


MAX_BARS = 31
CHART_COLOUR = "#1f5fa8"


def over_time(report: TallyReport) -> tuple[list[str], list[int]]:
    """Signatures over time as chart bars: by day, or by week (from Monday) when there are too many days."""
    if len(report.by_day) <= MAX_BARS:
        return [f"{day:%d %b}" for day, _ in report.by_day], [count for _, count in report.by_day]
    weeks: Counter[date] = Counter()
    for day, count in report.by_day:
        weeks[day - timedelta(days=day.weekday())] += count
    ordered = sorted(weeks.items())
    return [f"w/c {week:%d %b}" for week, _ in ordered], [count for _, count in ordered]


def chart_svg(report: TallyReport) -> str:
    labels, values = over_time(report)
    return bar_chart_svg(
        title="Signatures over time", labels=labels, series=[("Signatures", values, CHART_COLOUR)], unit="Signatures"
    )
