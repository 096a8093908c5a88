"""The public scoreboard: answered on time, late or not at all, per month; response times; commitments; chart."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models.lifecycle import PetitionState
from app.models.petitions import Petition
from app.models.responses import Commitment, CommitmentStatus, PetitionResponse
from app.responses.chart import bar_chart_svg
from app.responses.scoreboard import nearest_rank, scoreboard
from tests import factories
from tests.conftest import Browser, counting_statements

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # the frozen clock of tests/conftest.py


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def reached(
    db: Session,
    petition: Petition,
    *,
    on: str,
    due: str | None,
    answered: str | None = None,
    state: PetitionState | None = None,
) -> Petition:
    """Set the response clock of `petition` as if it had reached its threshold `on`."""
    values: dict[str, object] = {
        "response_threshold_reached_at": at(on),
        "response_due_at": due and at(due),
        "first_response_at": answered and at(answered),
    }
    if state is not None:
        values["state"] = state
    db.execute(update(Petition).where(Petition.id == petition.id).values(**values))
    db.commit()
    return petition


def respond(db: Session, petition: Petition, *commitments: tuple[CommitmentStatus, date | None]) -> None:
    response = PetitionResponse(
        petition_id=petition.id, summary="We will look at it.", details="Details.", status="accepted", created_at=NOW
    )
    db.add(response)
    db.flush()
    for number, (status, due_on) in enumerate(commitments):
        db.add(
            Commitment(
                response_id=response.id,
                petition_id=petition.id,
                text=f"Commitment {number}",
                owner="CTO",
                due_on=due_on,
                status=status,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    db.commit()


@pytest.fixture
def history(db, rt) -> dict[str, Petition]:
    """A year of petitions: every outcome, month boundaries, and petitions the public must not count."""
    petitions = {
        # November 2026
        "on_time": reached(
            db,
            factories.open_petition(db, rt),
            on="2026-11-02 10:00",
            due="2026-11-16 10:00",
            answered="2026-11-10 10:00",
        ),  # 8 days
        "within_time": reached(db, factories.open_petition(db, rt), on="2026-11-20 09:00", due="2026-12-04 09:00"),
        # October 2026
        "late": reached(
            db,
            factories.closed_petition(db, rt),
            on="2026-10-05 12:00",
            due="2026-10-19 12:00",
            answered="2026-10-25 12:00",
        ),  # 20 days
        "overdue": reached(db, factories.open_petition(db, rt), on="2026-10-31 23:59:59", due="2026-11-14 23:59:59"),
        # March 2026, archived since
        "archived": reached(
            db,
            factories.open_petition(db, rt),
            on="2026-03-01 00:00",
            due="2026-03-15 00:00",
            answered="2026-03-03 00:00",
            state=PetitionState.archived,
        ),  # 2 days
        # the first instant of the window: December 2025
        "window_start": reached(
            db,
            factories.open_petition(db, rt),
            on="2025-12-01 00:00",
            due="2025-12-15 00:00",
            answered="2025-12-02 12:00",
        ),  # 1.5 days
        # answered exactly at the due time: on time
        "on_the_dot": reached(
            db,
            factories.open_petition(db, rt),
            on="2026-06-01 00:00",
            due="2026-06-15 00:00",
            answered="2026-06-15 00:00",
        ),  # 14 days
        # just before the window
        "too_old": reached(db, factories.open_petition(db, rt), on="2025-11-30 23:59:59", due="2025-12-14 00:00"),
        # out of public view
        "hidden": reached(
            db,
            factories.open_petition(db, rt),
            on="2026-11-01 00:00",
            due="2026-11-15 00:00",
            state=PetitionState.hidden,
        ),
        "draft": reached(db, factories.draft_petition(db, rt), on="2026-11-03 00:00", due="2026-11-17 00:00"),
        "in_moderation": reached(
            db,
            factories.petition_in_moderation(db, rt),
            on="2026-10-03 00:00",
            due="2026-10-17 00:00",
            answered="2026-10-04 00:00",
        ),
    }
    today = NOW.date()
    respond(
        db,
        petitions["on_time"],
        (CommitmentStatus.done, today - timedelta(days=30)),  # done: never overdue
        (CommitmentStatus.dropped, None),
        (CommitmentStatus.planned, today - timedelta(days=1)),  # overdue
        (CommitmentStatus.in_progress, today - timedelta(days=60)),  # overdue
        (CommitmentStatus.in_progress, today),  # due today: not yet overdue
        (CommitmentStatus.planned, None),
    )
    respond(db, petitions["late"], (CommitmentStatus.done, None))
    respond(db, petitions["hidden"], (CommitmentStatus.planned, today - timedelta(days=5)))
    return petitions


def month(board, key: str):
    return next(m for m in board.months if m.month == key)


# -- the figures ------------------------------------------------------------------------------------------------


def test_petitions_count_in_the_month_they_reached_their_threshold_by_outcome(db, history) -> None:
    board = scoreboard(db=db, now=NOW)

    assert [m.month for m in board.months] == ["2025-12"] + [f"2026-{n:02d}" for n in range(1, 12)]
    assert board.months[0].label == "Dec 2025" and board.months[-1].label == "Nov 2026"
    assert board.first_month == date(2025, 12, 1)
    november, october = month(board, "2026-11"), month(board, "2026-10")
    assert (november.reached, november.answered_on_time, november.unanswered_within_time) == (2, 1, 1)
    assert (november.answered_late, november.unanswered_overdue) == (0, 0)
    assert (october.reached, october.answered_late, october.unanswered_overdue) == (2, 1, 1), (
        "23:59:59 UTC on the 31st is still October"
    )
    assert month(board, "2026-03").answered_on_time == 1, "archived petitions count"
    assert month(board, "2025-12").answered_on_time == 1, "the window starts at midnight UTC on the 1st"
    assert month(board, "2026-06").answered_on_time == 1, "answered exactly when due is on time"
    assert sum(m.reached for m in board.months) == board.totals.reached == 7, (
        "hidden, draft, in-moderation and older petitions are not counted"
    )
    assert board.totals.answered_on_time == 4 and board.totals.answered_late == 1
    assert board.totals.unanswered_overdue == 1 and board.totals.unanswered_within_time == 1
    assert board.on_time_share == round(4 / 6, 3), "within-time petitions are not settled yet"
    assert not board.empty


def test_median_and_90th_percentile_time_to_respond_in_days(db, history) -> None:
    times = scoreboard(db=db, now=NOW).response_times

    # 1.5, 2, 8, 14, 20 days
    assert times.answered == 5
    assert times.median_days == 8.0
    assert times.p90_days == 20.0


def test_percentiles_by_nearest_rank() -> None:
    assert nearest_rank([3.0], 0.9) == 3.0
    assert nearest_rank([4.0, 1.0], 0.5) == 1.0
    assert nearest_rank([float(n) for n in range(1, 11)], 0.9) == 9.0
    assert nearest_rank([float(n) for n in range(1, 12)], 0.9) == 10.0


def test_commitments_on_public_petitions_by_status_with_those_past_due(db, history) -> None:
    commitments = scoreboard(db=db, now=NOW).commitments

    assert commitments.total == 7, "the hidden petition's commitment is not counted"
    assert (commitments.done, commitments.dropped) == (2, 1)
    assert (commitments.planned, commitments.in_progress) == (2, 2)
    assert commitments.overdue == 2, "due yesterday and two months ago; not due today, not done"


def test_a_shorter_window_counts_only_its_months(db, history) -> None:
    board = scoreboard(db=db, now=NOW, months=2)

    assert [m.month for m in board.months] == ["2026-10", "2026-11"]
    assert board.totals.reached == 4
    assert board.response_times.answered == 2 and board.response_times.median_days == 14.0
    with pytest.raises(ValueError):
        scoreboard(db=db, now=NOW, months=0)


def test_the_figures_take_a_fixed_number_of_queries(db, rt, connection, history) -> None:
    with counting_statements(connection) as before:
        scoreboard(db=db, now=NOW)
    for _ in range(3):
        reached(
            db,
            factories.open_petition(db, rt),
            on="2026-09-01 00:00",
            due="2026-09-15 00:00",
            answered="2026-09-02 00:00",
        )
    with counting_statements(connection) as after:
        board = scoreboard(db=db, now=NOW)

    assert board.totals.reached == 10
    selects = [statement for statement in after if statement.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2
    assert len(after) == len(before)


def test_nothing_reached_yet_is_an_empty_scoreboard(db) -> None:
    board = scoreboard(db=db, now=NOW)

    assert board.empty and len(board.months) == 12
    assert board.response_times.median_days is None and board.response_times.p90_days is None
    assert board.on_time_share is None and board.commitments.total == 0


# -- the chart --------------------------------------------------------------------------------------------------


def test_the_chart_is_well_formed_accessible_svg_with_every_text_escaped() -> None:
    svg = bar_chart_svg(
        title='Answers <script>alert("x")</script> & more',
        labels=["Oct 2026", "Nov <b>"],
        series=[("On time", [1, 2], "#0b5cad"), ('Late "&" <i>', [0, 3], "#b35900")],
    )

    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == 'Answers <script>alert("x")</script> & more'
    assert desc is not None and "Oct 2026 to Nov <b>" in (desc.text or "")
    assert "The tallest bar is Nov <b>, with 5." in (desc.text or "")
    assert set(root.get("aria-labelledby", "").split()) == {title.get("id"), desc.get("id")}
    assert "<script" not in svg and "<b>" not in svg and "<i>" not in svg
    assert "style" not in svg
    texts = ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]
    assert "Oct2026" in texts, "axis labels, the year on a second line"
    assert 'Late "&" <i>' in texts, "the legend names every series"
    segments = [rect for rect in root.iter(f"{SVG}rect") if rect.find(f"{SVG}title") is not None]
    assert len(segments) == 3, "no rectangle for a zero"


def test_the_chart_refuses_what_it_cannot_draw_safely() -> None:
    with pytest.raises(ValueError):
        bar_chart_svg(title="t", labels=["a"], series=[("s", [1], 'red" onload="alert(1)')])
    with pytest.raises(ValueError):
        bar_chart_svg(title="t", labels=["a", "b"], series=[("s", [1], "#000000")])
    with pytest.raises(ValueError):
        bar_chart_svg(title="t", labels=["a"], series=[("s", [-1], "#000000")])


def test_an_empty_chart_still_draws() -> None:
    root = ET.fromstring(bar_chart_svg(title="Nothing", labels=["Nov 2026"], series=[("s", [0], "#0b5cad")]))
    assert "Every bar is empty." in (root.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]


# -- the page and the API ---------------------------------------------------------------------------------------


class TableReader(HTMLParser):
    """The rows of the scoreboard table, keyed by their data-month attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.in_table = False
        self.row: str | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "table" and values.get("id") == "scoreboard-table":
            self.in_table = True
        elif self.in_table and tag == "tr" and (month := values.get("data-month")):
            self.row = month
            self.rows[month] = []
        elif self.row and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.in_table = False
        elif tag in ("td", "th") and self.row and self.cell is not None:
            self.rows[self.row].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr":
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


FIELDS = ("reached", "answered_on_time", "answered_late", "unanswered_overdue", "unanswered_within_time")


def test_the_page_and_the_json_show_the_same_numbers(browser: Browser, history) -> None:
    page = browser.get("/scoreboard")
    api = browser.get("/api/v1/scoreboard")

    assert page.status_code == 200 and api.status_code == 200
    data = api.json()
    table = TableReader()
    table.feed(page.text)
    assert list(table.rows) == [m["month"] for m in data["months"]] + ["total"]
    for item in data["months"]:
        assert table.rows[item["month"]] == [item["label"]] + [str(item[field]) for field in FIELDS]
    assert table.rows["total"] == ["Total"] + [str(data["totals"][field]) for field in FIELDS]
    assert data["totals"]["reached"] == 7
    assert data["response_times"] == {"answered": 5, "median_days": 8.0, "p90_days": 20.0}
    assert data["commitments"] == {"total": 7, "planned": 2, "in_progress": 2, "done": 2, "dropped": 1, "overdue": 2}
    assert data["on_time_share"] == 0.667
    assert "8.0 days" in page.text and "20.0 days" in page.text and "(67% of those answered or past due)" in page.text

    chart = data["chart"]
    assert chart["labels"] == [m["label"] for m in data["months"]]
    by_name = {series["name"]: series["values"] for series in chart["series"]}
    assert by_name["Answered on time"] == [m["answered_on_time"] for m in data["months"]]
    assert by_name["Unanswered, overdue"] == [m["unanswered_overdue"] for m in data["months"]]
    assert all(re.fullmatch(r"#[0-9a-f]{6}", series["colour"]) for series in chart["series"])


def test_the_page_draws_the_chart_as_svg_without_inline_styles(browser: Browser, history) -> None:
    page = browser.get("/scoreboard").text

    found = re.search(r"<svg\b.*?</svg>", page, re.DOTALL)
    assert found, "the chart is in the page"
    root = ET.fromstring(found.group(0))
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text
    assert not any("style" in element.attrib for element in root.iter())
    assert not re.search(r"\sstyle\s*=|<style", page, re.IGNORECASE), "the CSP (style-src 'self') would block it"
    assert "<script" not in page
    assert '<th scope="col">Month</th>' in page and '<th scope="row">Nov 2026</th>' in page
    assert "<caption>" in page and "How these figures are computed" in page


def test_with_nothing_reached_the_page_says_so_and_the_api_answers_zeros(browser: Browser, db, rt) -> None:
    factories.open_petition(db, rt)  # open, far from its threshold

    page = browser.get("/scoreboard")
    data = browser.get("/api/v1/scoreboard").json()

    assert page.status_code == 200
    assert "No petition has reached its response threshold in the last 12 months" in page.text
    # No response chart (the organization's signatures-per-month chart is there whatever happens).
    assert "by month and outcome" not in page.text and "scoreboard-table" not in page.text
    assert data["totals"]["reached"] == 0 and len(data["months"]) == 12
    assert data["response_times"] == {"answered": 0, "median_days": None, "p90_days": None}
    assert data["on_time_share"] is None


def test_anyone_may_read_the_scoreboard_for_a_chosen_number_of_months(browser: Browser, history) -> None:
    data = browser.get("/api/v1/scoreboard?months=2").json()
    page = browser.get("/scoreboard?months=2").text

    assert [m["month"] for m in data["months"]] == ["2026-10", "2026-11"]
    assert "for the last 2 months" in page and 'href="/api/v1/scoreboard?months=2"' in page
    assert browser.get("/api/v1/scoreboard?months=0").status_code == 422
    assert browser.get("/scoreboard?months=100").status_code == 422
