"""A ballot's result as people read it: the page's table, chart and rounds, the CSV and JSON downloads, and the
ratification line on a petition's timeline, the scoreboard and the delivery PDF (issue #25).

Everything here is built from what `app.ballots.service.results` decided to publish: hidden until close (unless
live), "not enough answers yet" below the ballot's k, else the counts. So the page, the downloads and the
summaries suppress alike, from one decision, and nothing here reads an answer.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ballots import breakdown as group_breakdown
from app.ballots import counting
from app.ballots import service as ballots
from app.core.runtime import Runtime
from app.models.ballots import Ballot, BallotKind, BallotOption, BallotState
from app.models.lifecycle import PetitionState
from app.models.petitions import Petition
from app.reports.ballot_chart import result_chart_svg, share
from app.reports.model import BallotBreakdown, Cell, GroupResultRow, Ratification, suppressed_note
from app.reports.suppression import suppress_table

Status = Literal["hidden", "not_enough", "shown"]
RATIFICATION_YES, RATIFICATION_PARTLY, RATIFICATION_NO = 0, 1, 2


@dataclass(frozen=True)
class Row:
    position: int
    label: str
    count: int
    share: int  # whole percent of the people who answered


@dataclass(frozen=True)
class Round:
    counts: tuple[int | None, ...]  # per option position; None: dropped in an earlier round
    exhausted: int
    eliminated: int | None  # the position dropped at the end of this round
    winner: int | None  # the position that won in this round


@dataclass(frozen=True)
class BallotReport:
    ballot_id: int
    question: str
    kind: BallotKind
    state: BallotState
    status: Status
    answers_counted: int  # the public counter, shown whatever the status (the log commits it)
    answered: int  # the answers the figures are over (0 unless shown)
    min_answers: int
    labels: tuple[str, ...]
    rows: tuple[Row, ...]  # single, multiple, scale
    rounds: tuple[Round, ...]  # ranked
    winner: str | None  # ranked: the winning option's label
    breakdown: BallotBreakdown | None = None  # a poll put to two groups or more (app/ballots/breakdown.py)

    @property
    def hidden(self) -> bool:
        return self.status == "hidden"

    @property
    def not_enough(self) -> bool:
        return self.status == "not_enough"


def build(
    *,
    ballot: Ballot,
    labels: list[str],
    published: counting.Results | counting.NotEnough | ballots.Hidden,
    state: BallotState,
    breakdown: BallotBreakdown | None = None,
) -> BallotReport:
    """The report of what `ballots.results` published for the ballot (and `breakdown_of` by group)."""

    def report(
        status: Status,
        answered: int = 0,
        rows: tuple[Row, ...] = (),
        rounds: tuple[Round, ...] = (),
        winner: str | None = None,
    ) -> BallotReport:
        return BallotReport(
            ballot_id=ballot.id,
            question=ballot.question,
            kind=ballot.kind,
            state=state,
            status=status,
            answers_counted=ballot.answers_counted,
            answered=answered,
            min_answers=ballot.min_answers,
            labels=tuple(labels),
            rows=rows,
            rounds=rounds,
            winner=winner,
            breakdown=breakdown,
        )

    if isinstance(published, counting.NotEnough):
        return report("not_enough")
    if not isinstance(published, counting.Results):
        return report("hidden")
    if published.kind is BallotKind.ranked:
        last = len(published.rounds) - 1
        rounds = tuple(
            Round(
                counts=round_.counts,
                exhausted=round_.exhausted,
                eliminated=round_.eliminated,
                winner=published.winner if index == last else None,
            )
            for index, round_ in enumerate(published.rounds)
        )
        winner = labels[published.winner] if published.winner is not None else None
        return report("shown", published.answers, rounds=rounds, winner=winner)
    rows = tuple(
        Row(
            position=option.position,
            label=option.label,
            count=option.count,
            share=share(option.count, published.answers),
        )
        for option in published.options
    )
    return report("shown", published.answers, rows=rows)


def chart_svg(report: BallotReport) -> str | None:
    """The bar chart of a shown single, multiple or scale result (ranked results are a table of rounds)."""
    if report.status != "shown" or not report.rows:
        return None
    return result_chart_svg(
        title=report.question,
        labels=[row.label for row in report.rows],
        counts=[row.count for row in report.rows],
        total=report.answered,
    )


def breakdown_of(
    found: group_breakdown.GroupCounts | counting.NotEnough | ballots.Hidden | None, min_group_size: int
) -> BallotBreakdown | None:
    """What may be published of the counts per group: nothing for a poll without a breakdown, a status until it
    may be read, else every cell through the reports' suppression (each option's column adds up to the result's
    count for it, which is public)."""
    if found is None:
        return None
    if isinstance(found, ballots.Hidden):
        return BallotBreakdown(status="hidden", min_group_size=min_group_size)
    if isinstance(found, counting.NotEnough):
        return BallotBreakdown(status="not_enough", min_group_size=min_group_size)
    table = suppress_table([(row.name, row.counts) for row in found.rows], min_group_size=min_group_size)
    rows = tuple(
        GroupResultRow(
            group_id=row.group_id,
            kind=row.kind.value if row.kind is not None else None,
            name=row.name,
            cells=cells,
        )
        for row, (_label, cells) in zip(found.rows, table, strict=True)
    )
    return BallotBreakdown(status="shown", min_group_size=min_group_size, rows=rows)


def breakdown_json(breakdown: BallotBreakdown) -> dict[str, object]:
    """The breakdown as the API and the JSON download give it: a suppressed cell is null."""
    return {
        "status": breakdown.status,
        "min_group_size": breakdown.min_group_size,
        "rows": [
            {
                "group": row.group_id,
                "kind": row.kind,
                "name": row.name,
                "counts": [cell.count for cell in row.cells],
            }
            for row in breakdown.rows
        ],
    }


def _breakdown_csv(writer: Any, report: BallotReport) -> None:
    breakdown = report.breakdown
    if breakdown is None:
        return
    writer.writerow([])
    if breakdown.status == "hidden":
        writer.writerow(["breakdown", "by department or location once the poll closes"])
        return
    if breakdown.status == "not_enough":
        writer.writerow(["breakdown", f"not enough answers (from {breakdown.min_group_size} answers)"])
        return
    writer.writerow(["breakdown", "by department or location", suppressed_note(breakdown.min_group_size)])
    writer.writerow(["group", "kind", *[_safe(label) for label in report.labels]])
    for row in breakdown.rows:
        writer.writerow([_safe(row.name), row.kind or "", *[_cell(cell) for cell in row.cells]])


def _cell(cell: Cell) -> str | int:
    return "suppressed" if cell.count is None else cell.count


def report_json(report: BallotReport) -> str:
    """The result as JSON: figures only when the page shows them, and `status` says why they are missing."""
    shown = report.status == "shown"
    data: dict[str, object] = {
        "ballot": report.ballot_id,
        "question": report.question,
        "kind": report.kind.value,
        "state": report.state.value,
        "status": report.status,
        "answers_counted": report.answers_counted,
        "min_answers": report.min_answers,
        "answered": report.answered if shown else None,
        "options": [{"position": position, "label": label} for position, label in enumerate(report.labels)],
    }
    if shown and report.rounds:
        data["winner"] = report.winner
        data["rounds"] = [
            {
                "counts": list(round_.counts),
                "exhausted": round_.exhausted,
                "eliminated": round_.eliminated,
                "winner": round_.winner,
            }
            for round_ in report.rounds
        ]
    elif shown:
        data["results"] = [{"position": row.position, "answers": row.count, "share": row.share} for row in report.rows]
    if report.breakdown is not None:
        data["breakdown"] = breakdown_json(report.breakdown)
    return json.dumps(data, ensure_ascii=False, indent=2)


_FORMULA_AFTER_SEPARATOR = re.compile(r"(?:^|(?<=[,;\t|\r\n]))([ \u00a0]*)(?=[=+\-@\t\r])")


def _safe(text: str) -> str:
    """A cell a spreadsheet would read as a formula is made text (CSV injection), at its start and after anything
    a spreadsheet may split cells on ("Monday;=1+1" opened where cells split on semicolons): the petition
    exports' rule (app/reports/exports.py's `inert`, which this module cannot import: exports reads the tally,
    which reads this module)."""
    return _FORMULA_AFTER_SEPARATOR.sub(r"\1'", text)


def report_csv(report: BallotReport) -> str:
    """One table: round (ranked only), option, answers, share; without figures, one line that says why."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["question", _safe(report.question)])
    writer.writerow(["state", report.state.value])
    writer.writerow(["answers_counted", report.answers_counted])
    if report.status == "hidden":
        writer.writerow(["status", "hidden until the poll closes"])
        _breakdown_csv(writer, report)
        return out.getvalue()
    if report.status == "not_enough":
        writer.writerow(["status", f"not enough answers yet (figures from {report.min_answers} answers)"])
        _breakdown_csv(writer, report)
        return out.getvalue()
    writer.writerow(["answered", report.answered])
    writer.writerow([])
    if report.rounds:
        writer.writerow(["round", "position", "option", "answers", "note"])
        for number, round_ in enumerate(report.rounds, start=1):
            for position, label in enumerate(report.labels):
                count = round_.counts[position]
                note = "dropped" if round_.eliminated == position else "wins" if round_.winner == position else ""
                writer.writerow([number, position, _safe(label), "" if count is None else count, note])
            writer.writerow([number, "", "exhausted", round_.exhausted, ""])
        _breakdown_csv(writer, report)
        return out.getvalue()
    writer.writerow(["position", "option", "answers", "share_percent"])
    for row in report.rows:
        writer.writerow([row.position, _safe(row.label), row.count, row.share])
    _breakdown_csv(writer, report)
    return out.getvalue()


def ratification(report: BallotReport, ballot: Ballot) -> Ratification | None:
    """The ratification line of a closed ratification ballot whose figures are shown; None otherwise."""
    if ballot.response_id is None or ballot.petition_id is None:
        return None
    if report.state is not BallotState.closed or report.status != "shown" or len(report.rows) != 3:
        return None
    counts = [row.count for row in report.rows]
    return Ratification(
        ballot_id=ballot.id,
        petition_id=ballot.petition_id,
        response_id=ballot.response_id,
        closed_at=ballot.closes_at,
        answered=report.answered,
        yes=counts[RATIFICATION_YES],
        partly=counts[RATIFICATION_PARTLY],
        no=counts[RATIFICATION_NO],
    )


def _options(db: Session, ballot_ids: list[int]) -> dict[int, list[str]]:
    labels: dict[int, list[str]] = {ballot_id: [] for ballot_id in ballot_ids}
    if ballot_ids:
        rows = db.execute(
            select(BallotOption.ballot_id, BallotOption.label)
            .where(BallotOption.ballot_id.in_(ballot_ids))
            .order_by(BallotOption.ballot_id, BallotOption.position)
        )
        for ballot_id, label in rows:
            labels[ballot_id].append(label)
    return labels


def report_of(db: Session, rt: Runtime, ballot: Ballot, labels: list[str] | None = None) -> BallotReport:
    return build(
        ballot=ballot,
        labels=labels if labels is not None else _options(db, [ballot.id])[ballot.id],
        published=ballots.results(db, rt, ballot),
        state=ballots.state(ballot, rt.clock.now()),
        breakdown=breakdown_of(group_breakdown.group_counts(db, rt, ballot), ballot.min_answers),
    )


@dataclass(frozen=True)
class Listed:
    ballot: Ballot
    state: BallotState

    # Named questions for templates (they compare no state strings).
    @property
    def is_open(self) -> bool:
        return self.state is BallotState.open

    @property
    def is_scheduled(self) -> bool:
        return self.state is BallotState.scheduled


def listed(ballot_rows: list[Ballot], now: datetime) -> list[Listed]:
    return [Listed(ballot=ballot, state=ballots.state(ballot, now)) for ballot in ballot_rows]


def petition_polls(db: Session, rt: Runtime, petition: Petition) -> list[Listed]:
    """A petition's ballots with their state, for its page (the same for every reader of the petition)."""
    return listed(ballots.for_petition(db=db, petition=petition), rt.clock.now())


def petition_ratifications(db: Session, rt: Runtime, petition: Petition) -> list[Ratification]:
    """The petition's closed ratification ballots whose result is shown (above k), oldest first."""
    now = rt.clock.now()
    found = []
    for ballot in ballots.for_petition(db=db, petition=petition):
        if ballot.response_id is None or ballots.state(ballot, now) is not BallotState.closed:
            continue
        line = ratification(report_of(db, rt, ballot), ballot)
        if line is not None:
            found.append(line)
    return sorted(found, key=lambda line: (line.closed_at, line.ballot_id))


def recent_ratifications(db: Session, rt: Runtime, since: datetime) -> list[tuple[Ratification, str]]:
    """Ratification ballots closed since `since` whose result is shown, newest first, with their petition's title:
    the scoreboard's "accepted by 72% of 410 signers who answered"."""
    now = rt.clock.now()
    closed = db.execute(
        select(Ballot, Petition.title)
        .join(Petition, Petition.id == Ballot.petition_id)
        # Only petitions the scoreboard scores: public ones (a hidden petition's verdict is not published here).
        .where(Petition.state.in_([PetitionState.open, PetitionState.closed, PetitionState.archived]))
        .where(Ballot.response_id.is_not(None), Ballot.closes_at >= since, Ballot.closes_at <= now)
        .order_by(Ballot.closes_at.desc(), Ballot.id.desc())
    ).all()
    found = []
    for ballot, title in closed:
        if ballots.state(ballot, now) is not BallotState.closed:
            continue
        line = ratification(report_of(db, rt, ballot), ballot)
        if line is not None:
            found.append((line, title))
    return found
