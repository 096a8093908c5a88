"""What a petition's reports contain: plain data, built once and rendered as a page, CSV, JSON, XLSX or PDF.

Every number here is safe to publish: breakdowns by department and location have been through small-cell
suppression (`app/reports/suppression.py`), and a suppressed cell is `None`, never its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from app.models.responses import CommitmentStatus, ResponseStatus


def suppressed_note(min_group_size: int) -> str:
    """What every export prints for a suppressed cell (which may hide a group of any size, not only a small one)."""
    return f"suppressed (protects groups under {min_group_size})"


@dataclass(frozen=True)
class Cell:
    label: str
    count: int | None  # None: suppressed (fewer than the minimum group size, or needed to protect such a cell)


@dataclass(frozen=True)
class Breakdown:
    kind: str  # "department" or "location"
    cells: tuple[Cell, ...]  # the groups, then "Not given"; they add up to `total`
    total: int  # the signatures counted (equals the report's signature count)

    @property
    def suppressed(self) -> int:
        return sum(1 for cell in self.cells if cell.count is None)


@dataclass(frozen=True)
class GroupResultRow:
    """One department or location of a poll's breakdown (or "Not given"): its answers per option, suppressed."""

    group_id: int | None  # None: the answers counted under no group
    kind: str | None  # "department", "location"; None for "Not given"
    name: str
    cells: tuple[Cell, ...]  # per option position (ranked: first preferences); a suppressed cell's count is None


@dataclass(frozen=True)
class BallotBreakdown:
    """A poll's result by group (issue #25): "hidden" until it closes and its last batch is in, "not_enough" below
    its minimum of answers, else the rows through `suppression.suppress_table`."""

    status: str  # "hidden", "not_enough", "shown"
    min_group_size: int  # cells below it are suppressed (the poll's minimum of answers)
    rows: tuple[GroupResultRow, ...] = ()  # empty unless shown

    @property
    def suppressed(self) -> int:
        return sum(1 for row in self.rows for cell in row.cells if cell.count is None)


@dataclass(frozen=True)
class Threshold:
    kind: str  # "response" or "escalation"
    signatures: int
    reached_at: datetime | None


@dataclass(frozen=True)
class ResponseSummary:
    at: datetime
    status: ResponseStatus
    summary: str
    details: str


@dataclass(frozen=True)
class CommitmentSummary:
    text: str
    owner: str
    due_on: date | None
    status: CommitmentStatus


def _share(count: int, total: int) -> int:
    """Whole percent, rounded half up (app.reports.ballot_chart.share)."""
    return (count * 200 + total) // (total * 2) if total else 0


@dataclass(frozen=True)
class Ratification:
    """The signers' verdict on a response, from a closed ratification ballot above its k (issue #25):
    "accepted by 72% of 410 signers who answered"."""

    ballot_id: int
    petition_id: int
    response_id: int | None
    closed_at: datetime
    answered: int
    yes: int
    partly: int
    no: int

    kind = "ratification"  # its place on a petition's timeline

    @property
    def at(self) -> datetime:
        return self.closed_at

    @property
    def accepted_share(self) -> int:
        """Accepted counts "yes" only; "partly" is shown beside it, never added to it."""
        return _share(self.yes, self.answered)

    @property
    def partly_share(self) -> int:
        return _share(self.partly, self.answered)

    @property
    def no_share(self) -> int:
        return _share(self.no, self.answered)


@dataclass(frozen=True)
class TallyReport:
    petition_id: int
    title: str
    ask: str
    background: str
    decision_maker: str | None
    version: int  # the text's version number (0: as first published)
    content_hash: str  # SHA-256 of the current text (app.petitions.service.content_hash)
    state: str
    opened_at: datetime | None
    closed_at: datetime | None
    generated_at: datetime
    signature_count: int  # counted now (withdrawn and voided signatures are not)
    withdrawal_count: int
    voided_count: int
    by_visibility: dict[str, int]  # "public", "organizers", "anonymous" -> count
    thresholds: tuple[Threshold, ...]
    by_day: tuple[tuple[date, int], ...]  # signatures counted now, by the day they were given (UTC)
    by_hour: tuple[tuple[datetime, int], ...]  # the same by hour (signatures keep only the hour)
    departments: Breakdown | None  # None when the petition did not ask signers for them
    locations: Breakdown | None
    min_group_size: int
    responses: tuple[ResponseSummary, ...] = ()
    commitments: tuple[CommitmentSummary, ...] = ()
    log_fingerprint: str | None = None  # the signature log's latest tree head, once the petition has a log
    ratifications: tuple[Ratification, ...] = ()  # the signers' verdicts on responses, once closed and above k
    # The public's view of an open petition leaves out the department and location tables and the hourly
    # series: watching them change as a colleague signs would tell their department (see app/reports/tally.py).
    withheld_while_open: bool = False


@dataclass(frozen=True)
class SignerRow:
    """One name a signer chose to show (publicly or to the organizers); never an anonymous signer."""

    name: str
    visibility: str  # "public" or "organizers"
    signed_on: date
    department: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class ExportRecord:
    at: datetime
    actor_name: str
    kind: str  # "tally" or "signers"
    format: str  # "csv", "json", "xlsx", "pdf"
