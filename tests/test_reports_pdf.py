"""PDF reports (app/reports/pdf/): the delivery report and the signer list, read back with pypdf.

Built from hand-made report data: nothing here needs a database.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from PIL import Image  # Pillow: a dependency of fpdf2
from pypdf import PdfReader

from app.models.responses import CommitmentStatus, ResponseStatus
from app.reports import tally
from app.reports.model import Breakdown, Cell, CommitmentSummary, ResponseSummary, SignerRow, TallyReport, Threshold
from app.reports.pdf import signers_pdf, tally_pdf
from app.reports.pdf.document import REPLACEMENT
from tests.conftest import missing

ORGANIZATION = "Acme Workers"
GENERATED = datetime(2025, 3, 20, 14, 5, tzinfo=UTC)
START = date(2025, 3, 1)
BY_DAY = tuple((START + timedelta(days=i), count) for i, count in enumerate([3, 0, 40, 12, 120, 7, 1]))
UNICODE_NAMES = ["Zoë Ångström", "Łukasz Żółć", "Ана Иванова", "محمد", "Ελένη"]
CJK_NAME = "李雷"


def make_report(**changes: Any) -> TallyReport:
    report = TallyReport(
        petition_id=42,
        title="Fair on-call pay for the platform team",
        ask="Pay on-call hours at time and a half.\n\nPublish the rota two weeks ahead.",
        background="Since 2023 the rota has changed without notice.",
        decision_maker="Chief People Officer",
        version=3,
        content_hash="0f" * 32,
        state="open",
        opened_at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC),
        closed_at=None,
        generated_at=GENERATED,
        signature_count=183,
        withdrawal_count=6,
        voided_count=2,
        by_visibility={"public": 120, "organizers": 50, "anonymous": 13},
        thresholds=(
            Threshold(kind="response", signatures=100, reached_at=datetime(2025, 3, 5, 10, 30, tzinfo=UTC)),
            Threshold(kind="escalation", signatures=5000, reached_at=None),
        ),
        by_day=BY_DAY,
        by_hour=(),
        departments=Breakdown(
            kind="department",
            total=183,
            cells=(Cell("Engineering", 150), Cell("Legal", None), Cell("Sales", None), Cell("Not given", 30)),
        ),
        locations=Breakdown(kind="location", total=183, cells=(Cell("Berlin", 100), Cell("Lisbon", 83))),
        min_group_size=5,
        responses=(
            ResponseSummary(
                at=datetime(2025, 3, 10, 12, 0, tzinfo=UTC),
                status=ResponseStatus.under_review,
                summary="We are reviewing the rota",
                details="The HR team will report back by April.",
            ),
        ),
        commitments=(
            CommitmentSummary(
                text="Publish the on-call rota two weeks in advance",
                owner="Head of Platform",
                due_on=date(2025, 4, 1),
                status=CommitmentStatus.in_progress,
            ),
        ),
        log_fingerprint="sha256:" + "ab" * 32,
    )
    return replace(report, **changes)


def make_signers(count: int, **changes: Any) -> list[SignerRow]:
    return [
        replace(
            SignerRow(
                name=f"Signer {number:05d}",
                visibility="public" if number % 3 else "organizers",
                signed_on=START + timedelta(days=number % 20),
                department="Engineering",
                location="Łódź",
            ),
            **changes,
        )
        for number in range(1, count + 1)
    ]


def signers(rows: list[SignerRow], *, title: str = "Fair on-call pay") -> bytes:
    return signers_pdf(title=title, petition_id=42, generated_at=GENERATED, rows=rows, organization=ORGANIZATION)


def read(pdf: bytes) -> PdfReader:
    assert pdf.startswith(b"%PDF-")
    return PdfReader(io.BytesIO(pdf))


def pages_text(pdf: bytes) -> list[str]:
    """Each page's text with its whitespace collapsed: table cells come out separated by single spaces."""
    return [" ".join(page.extract_text().split()) for page in read(pdf).pages]


def text_of(pdf: bytes) -> str:
    return " ".join(pages_text(pdf))


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def fpdf_warnings() -> Iterator[list[logging.LogRecord]]:
    """What fpdf2 logs as a warning (a glyph missing from the font is one: a log record, not a Python warning)."""
    handler = Records()
    logger = logging.getLogger("fpdf")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


# -- the delivery report ----------------------------------------------------------------------------------------


def test_delivery_report_has_the_petition_and_its_tally() -> None:
    text = text_of(tally_pdf(make_report(), organization=ORGANIZATION))
    for expected in [
        ORGANIZATION,
        "Petition #42",
        "Fair on-call pay for the platform team",
        "State Open",
        "Version 3",
        "Text SHA-256 " + "0f" * 32,
        "Decision-maker Chief People Officer",
        "Opened 1 Mar 2025, 09:00 UTC",
        "Generated 20 Mar 2025, 14:05 UTC",
        "Pay on-call hours at time and a half.",
        "Publish the rota two weeks ahead.",
        "Since 2023 the rota has changed without notice.",
        "Signatures counted 183",
        "Names shown publicly 120",
        "Names shown to organizers only 50",
        "Anonymous 13",
        "Withdrawn by their signers 6",
        "Voided by the moderators 2",
    ]:
        assert expected in text, expected


def test_thresholds_say_when_they_were_reached_or_not_yet() -> None:
    text = text_of(tally_pdf(make_report(), organization=ORGANIZATION))
    assert "Response threshold: 100 signatures reached 5 Mar 2025, 10:30 UTC" in text
    assert "Escalation threshold: 5,000 signatures not yet reached" in text
    text = text_of(tally_pdf(make_report(thresholds=()), organization=ORGANIZATION))
    assert "This petition has no thresholds." in text


def test_breakdowns_print_suppressed_cells_as_such_and_explain_why() -> None:
    text = text_of(tally_pdf(make_report(), organization=ORGANIZATION))
    assert "Department Signatures Engineering 150" in text
    assert "Legal suppressed (protects groups under 5)" in text
    assert "Sales suppressed (protects groups under 5)" in text
    assert "Not given 30 Total 183" in text
    assert "Location Signatures Berlin 100 Lisbon 83 Total 183" in text
    assert "Small-group suppression: a group with fewer than 5 signatures is not shown" in text
    assert text.count("Small-group suppression") == 1

    text = text_of(tally_pdf(make_report(departments=None, locations=None), organization=ORGANIZATION))
    assert "suppress" not in text.lower()
    assert "Department" not in text


def test_responses_commitments_and_log_fingerprint() -> None:
    text = text_of(tally_pdf(make_report(), organization=ORGANIZATION))
    assert "10 Mar 2025, 12:00 UTC · Under review We are reviewing the rota" in text
    assert "The HR team will report back by April." in text
    assert (
        "Commitment Owner Due Status Publish the on-call rota two weeks in advance Head of Platform "
        "1 Apr 2025 In progress"
    ) in text
    assert "sha256:" + "ab" * 32 in text

    text = text_of(
        tally_pdf(make_report(responses=(), commitments=(), log_fingerprint=None), organization=ORGANIZATION)
    )
    assert "No response has been recorded." in text
    assert "No commitment has been recorded." in text
    assert "Signature log" not in text
    assert "sha256:" not in text


def test_metadata_names_the_report_and_the_creator_only() -> None:
    metadata = read(tally_pdf(make_report(), organization=ORGANIZATION)).metadata
    assert metadata is not None
    assert metadata.title == "Petition #42: Fair on-call pay for the platform team (delivery report)"
    assert metadata.creator == "Undersigned"
    assert metadata.author == ORGANIZATION


def test_every_page_is_numbered_out_of_the_total() -> None:
    report = make_report(ask="Pay on-call hours at time and a half. " * 600)
    texts = pages_text(tally_pdf(report, organization=ORGANIZATION))
    assert len(texts) > 3
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {len(texts)}" in text


def test_long_texts_wrap_and_long_tables_break_across_pages() -> None:
    token = "https://example.com/" + "x" * 400  # no space to break at
    locations = Breakdown(
        kind="location", total=183 * 150, cells=tuple(Cell(f"Office number {index:03d}", 183) for index in range(150))
    )
    report = make_report(
        ask="Pay on-call hours at time and a half. " * 400 + token + " The end.",
        title="A title long enough to wrap over several lines of the page " * 4,
        locations=locations,
    )
    pdf = tally_pdf(report, organization=ORGANIZATION)
    texts = pages_text(pdf)
    text = " ".join(texts)
    assert token in "".join(text.split())
    assert "The end." in text
    assert all(f"Office number {index:03d} 183" in text for index in range(150))
    continued = [page for page in texts if "Office number 149" in page or "Office number 100" in page]
    assert continued and all("Location Signatures" in page for page in continued)  # headings repeat
    with fpdf_warnings() as records:
        tally_pdf(report, organization=ORGANIZATION)
    assert not records, [record.getMessage() for record in records]


def chart_bars(pdf: bytes) -> list[float]:
    """The heights of the filled rectangles drawn in the chart's colour, in drawing order."""
    red, green, blue = (int(tally.CHART_COLOUR[i : i + 2], 16) / 255 for i in (1, 3, 5))
    colour = f"{red:.4f} {green:.4f} {blue:.4f} rg"
    for page in read(pdf).pages:
        content = page.get_contents()
        assert content is not None
        lines = content.get_data().decode("latin-1").splitlines()
        if colour in lines:
            heights = []
            for line in lines[lines.index(colour) + 1 :]:
                if not (match := re.fullmatch(r"[\d.-]+ [\d.-]+ [\d.-]+ ([\d.-]+) re f", line)):
                    break
                heights.append(-float(match[1]))
            return heights
    return []


def test_chart_draws_one_bar_per_day_in_proportion() -> None:
    pdf = tally_pdf(make_report(), organization=ORGANIZATION)
    counts = [count for _, count in BY_DAY if count]  # an empty day has no bar
    heights = chart_bars(pdf)
    assert len(heights) == len(counts)
    assert all(
        height / count == pytest.approx(heights[0] / counts[0], rel=0.01)
        for height, count in zip(heights, counts, strict=True)
    )
    text = text_of(pdf)
    assert "By day, in UTC." in text
    assert "183 signatures over 7 days, 01 Mar to 07 Mar; the most in one day: 120 (05 Mar)." in text


def test_chart_goes_weekly_like_the_page_and_copes_with_no_signatures() -> None:
    by_day = tuple((START + timedelta(days=i), 5) for i in range(90))
    report = make_report(by_day=by_day)
    labels, values = tally.over_time(report)
    pdf = tally_pdf(report, organization=ORGANIZATION)
    assert len(chart_bars(pdf)) == len(labels) == len(values)
    assert "By week (weeks from Monday), in UTC." in text_of(pdf)

    text = text_of(tally_pdf(make_report(by_day=(), signature_count=0), organization=ORGANIZATION))
    assert "No signatures yet." in text


def test_text_the_font_cannot_show_is_replaced_and_said_so() -> None:
    report = make_report(title=f"Pay for {CJK_NAME}", background="Tabs\tand control\x07 characters; {nb}.")
    with fpdf_warnings() as records:
        pdf = tally_pdf(report, organization=ORGANIZATION)
    assert not records, [record.getMessage() for record in records]
    text = text_of(pdf)
    assert CJK_NAME not in text
    assert f"Pay for {REPLACEMENT * 2}" in text
    assert "characters that the font used here cannot show (for example Chinese, Japanese or Korean" in text
    assert "Tabs and control characters; {nb}." in text  # the page-count alias is not a text anyone can type
    assert "printed as" not in text_of(tally_pdf(make_report(), organization=ORGANIZATION))


# -- the signer list --------------------------------------------------------------------------------------------


def test_signer_list_prints_unicode_names() -> None:
    rows = [SignerRow(name=name, visibility="public", signed_on=START) for name in [*UNICODE_NAMES, CJK_NAME]]
    with fpdf_warnings() as records:
        pdf = signers(rows)
    assert not records, [record.getMessage() for record in records]
    text = text_of(pdf)
    for name in UNICODE_NAMES:
        assert name in text, name
    assert REPLACEMENT * 2 in text
    assert "2 characters that the font used here cannot show" in text
    assert "Department" not in text and "Location" not in text  # columns nobody has a value for are left out


def test_signer_list_header_says_whose_names_these_are() -> None:
    pdf = signers(make_signers(5))
    text = text_of(pdf)
    assert "Signer list · Petition #42 Fair on-call pay 5 names as of 20 Mar 2025, 14:05 UTC." in text
    assert (
        "Only the names signers chose to show are listed: publicly, or to the organizers only. "
        "Anonymous signers are never listed."
    ) in text
    assert "For the organizers only: signers were promised that leadership and colleagues see only counts" in " ".join(
        text.split()
    )
    assert "No. Name Visibility Signed on Department Location" in text
    assert "1 Signer 00001 Public 2 Mar 2025 Engineering Łódź" in text
    assert "3 Signer 00003 Organizers only 4 Mar 2025 Engineering Łódź" in text
    # "Anonymous" appears once: to say anonymous signers are never listed.
    assert len(re.findall("anonymous", text, re.IGNORECASE)) == 1
    metadata = read(pdf).metadata
    assert metadata is not None
    assert metadata.title == "Petition #42: Fair on-call pay (signer list)"
    assert metadata.creator == "Undersigned"
    assert "Signer" not in (metadata.author or "")

    text = text_of(signers(make_signers(3, visibility="public")))
    assert "Organizers only" not in text.replace("For the organizers only", "")
    assert "3 names as of" in text


def test_signer_list_refuses_anonymous_rows_and_handles_none() -> None:
    with pytest.raises(ValueError, match="anonymous"):
        signers(make_signers(2, visibility="anonymous"))
    text = text_of(signers([]))
    assert "0 names as of" in text
    assert "No signer has chosen to show their name." in text


def test_long_signer_list_has_every_name_on_numbered_pages() -> None:
    rows = make_signers(3000)
    rows[10] = replace(rows[10], name="A name long enough to wrap within its column " * 3)
    texts = pages_text(signers(rows))
    assert len(texts) > 20
    text = " ".join(texts)
    for row in rows[11:]:
        assert row.name in text, row.name
    assert "A name long enough to wrap within its column " * 2 in text
    assert "3,000 Signer 03000" in text
    for number, page in enumerate(texts, start=1):
        assert "Name Visibility Signed on" in page  # the column headings repeat
        assert f"Page {number} of {len(texts)}" in page


def test_page_one_renders_to_an_image(tmp_path: Path) -> None:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        missing("pdftoppm (poppler-utils) is not installed: cannot render a page to check it draws")
        return
    for name, pdf in [
        ("tally", tally_pdf(make_report(), organization=ORGANIZATION)),
        ("signers", signers(make_signers(40))),
    ]:
        source = tmp_path / f"{name}.pdf"
        source.write_bytes(pdf)
        result = subprocess.run(
            [pdftoppm, "-png", "-r", "40", "-f", "1", "-l", "1", "-singlefile", str(source), str(tmp_path / name)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "rror" not in result.stderr, result.stderr  # poppler reports a broken PDF on stderr
        with Image.open(tmp_path / f"{name}.png") as image:
            assert image.size == pytest.approx((331, 468), abs=2)  # A4 at 40 dpi
            darkest, lightest = cast(tuple[int, int], image.convert("L").getextrema())
        assert lightest == 255 and darkest < 80  # a white page with text on it


# -- Markdown, the footer, what readers and screen readers are told (issue #22) ------------------------------------

MARKDOWN = (
    "Since **2023** the rota has *changed* without notice, and __twice__ in one week.\n\n"
    "- nights\n- weekends, **unpaid**\n\n1. first\n2. second\n\n> As the handbook says.\n\n"
    "See [the rota](https://example.org/rota). Typed literally: a -- b, 2 \\*\\* 3."
)


def test_markdown_in_the_background_and_the_details_prints_as_meant() -> None:
    report = make_report(
        background=MARKDOWN,
        responses=(
            ResponseSummary(
                at=datetime(2025, 3, 10, 12, 0, tzinfo=UTC),
                status=ResponseStatus.under_review,
                summary="Reviewing",
                details="We will **publish** it:\n\n- by *April*",
            ),
        ),
    )
    pdf = tally_pdf(report, organization=ORGANIZATION)
    text = text_of(pdf)
    assert "**" not in text.replace("2 ** 3", "") and "*changed*" not in text and "__twice__" not in text
    assert "Since 2023 the rota has changed without notice, and twice in one week." in text
    assert "• nights" in text and "• weekends, unpaid" in text and "1. first" in text and "2. second" in text
    assert "As the handbook says." in text and "> As" not in text
    assert "See the rota." in text and "[the rota]" not in text
    assert "a -- b, 2 ** 3" in text, "markers typed literally print as typed"
    assert "We will publish it:" in text and "• by April" in text
    links = [
        annotation.get_object()["/A"]["/URI"] for page in read(pdf).pages for annotation in page.get("/Annots", [])
    ]
    assert "https://example.org/rota" in links
    # Bold and italics are set in the bold and oblique faces, not left as asterisks.
    fonts = {
        font.get_object()["/BaseFont"]
        for page in read(pdf).pages
        for font in cast(Any, page["/Resources"])["/Font"].values()
    }
    assert any("Oblique" in str(name) for name in fonts) and any("Bold" in str(name) for name in fonts)
    with fpdf_warnings() as records:
        tally_pdf(report, organization=ORGANIZATION)
    assert not records, [record.getMessage() for record in records]


def test_right_to_left_markdown_prints_its_words_without_styles() -> None:
    text = text_of(tally_pdf(make_report(background="**مرحبا** بالعالم"), organization=ORGANIZATION))
    flat = text.replace(" ", "")
    assert "**" not in text and ("مرحبا" in flat or "ابحرم" in flat), "its words, in either order pypdf reads"


def test_the_footer_is_printed_whole_on_every_page() -> None:
    title = "Fair on-call pay for the platform team, the data team and everyone else who carries a pager " * 2
    report = make_report(title=title.strip(), ask="Pay on-call hours at time and a half. " * 300)
    texts = pages_text(tally_pdf(report, organization=ORGANIZATION))
    footer = " ".join(f"{ORGANIZATION} · Petition #42: {title.strip()} · generated 20 Mar 2025, 14:05 UTC".split())
    assert len(texts) > 2
    for text in texts:
        assert footer in text, text[-400:]
        assert "…" not in text


def test_readers_get_the_title_language_and_an_outline() -> None:
    reader = read(tally_pdf(make_report(), organization=ORGANIZATION))
    root: Any = reader.trailer["/Root"]
    assert root["/Lang"] == "en"
    assert bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
    outline = [item.title for item in cast(list[Any], reader.outline)]
    assert outline[:3] == ["The ask", "Background", "Signatures"] and "Responses" in outline


def _untagged_text(reader: PdfReader) -> list[str]:
    """Text shown outside any marked content (neither a structure element's nor an artifact): what a screen reader
    reading the structure would miss."""
    from pypdf.generic import ContentStream

    missed = []
    for number, page in enumerate(reader.pages, start=1):
        depth = 0
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator in (b"BDC", b"BMC"):
                depth += 1
            elif operator == b"EMC":
                depth -= 1
            elif operator in (b"Tj", b"TJ", b"'", b'"') and depth <= 0:
                missed.append(f"page {number}: {operands!r}"[:120])
        assert depth == 0, f"page {number} leaves marked content open"
    return missed


def test_the_delivery_report_is_tagged_for_screen_readers() -> None:
    """Issue #22: a tagged PDF (/MarkInfo, a structure tree), its language, title and outline. Every piece of text
    is in the structure, in reading order (the title /H1, section headings /H2, Markdown headings /H3, the rest
    /P), the chart is a /Figure with a text alternative, and the footer and page numbers are artifacts.

    What fpdf2 2.8 gives no way to build, and so is not tagged: tables as /Table, /TR, /TH and /TD (their cells are
    /P, row by row), lists as /L and /LI, and any nesting of elements (all are children of /Document)."""
    many_days = tuple((START + timedelta(days=i), i % 7) for i in range(40))  # long enough to cross pages
    reader = read(tally_pdf(make_report(by_day=many_days), organization=ORGANIZATION))
    root: Any = reader.trailer["/Root"]
    assert bool(root["/MarkInfo"]["/Marked"])
    assert root["/Lang"] == "en" and bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
    assert reader.metadata is not None and reader.metadata.title == (
        "Petition #42: Fair on-call pay for the platform team (delivery report)"
    )
    [document] = root["/StructTreeRoot"]["/K"]
    assert document["/S"] == "/Document"
    elements = [kid.get_object() for kid in document["/K"]]
    kinds = [element["/S"] for element in elements]
    assert kinds.count("/H1") == 1 and kinds.index("/H1") < kinds.index("/H2")
    outline = [item.title for item in cast(list[Any], reader.outline)]
    assert kinds.count("/H2") == len(outline), "a heading element for each bookmark"
    assert "/P" in kinds and "/H3" not in kinds
    [figure] = [element for element in elements if element["/S"] == "/Figure"]
    assert figure["/Alt"].startswith("Bar chart of signatures by week. 115 signatures over 7 weeks")
    assert len(reader.pages) > 1
    for page in reader.pages:
        assert "/StructParents" in page
    assert not _untagged_text(reader)

    # Markdown headings are /H3, and a block longer than a page is split into elements a page long.
    long_background = "## The rota\n\n" + "Word " * 6000
    reader = read(tally_pdf(make_report(background=long_background), organization=ORGANIZATION))
    [document] = cast(Any, reader.trailer["/Root"])["/StructTreeRoot"]["/K"]
    assert "/H3" in [kid.get_object()["/S"] for kid in document["/K"]]
    assert not _untagged_text(reader)
