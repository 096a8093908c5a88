"""PDF reports, drawn with fpdf2 (pure Python, no system packages): the delivery report organizers hand to
leadership, and the list of the names signers chose to show.

Text is set in DejaVu Sans, bundled in `fonts/` with its licence, so names in Latin, Greek, Cyrillic, Arabic,
Hebrew, Armenian, Georgian and many other scripts print as written. A character the font lacks (Chinese,
Japanese and Korean script, Devanagari) prints as U+FFFD, and the document then says so and points to the CSV,
JSON and XLSX exports, which hold every name exactly; it never prints as an empty box or vanishes without a
word. Right-to-left text is put in visual order with fpdf2's bidi algorithm, but not shaped (that needs
HarfBuzz, which is not a dependency): Arabic letters print in their isolated forms, unjoined.

The chart of signatures over time is the one the report page shows (`app.reports.tally.over_time`, the same
bars, colour and gridlines as `app.responses.chart`), drawn with PDF primitives rather than parsed from SVG.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from fpdf import FPDF, ViewerPreferences
from fpdf.bidi import BidiParagraph
from fpdf.enums import Align, MethodReturnValue, XPos, YPos
from fpdf.fonts import TTFFont

from app.reports import pdf_markdown, tally
from app.reports.model import Breakdown, SignerRow, TallyReport, suppressed_note
from app.responses.chart import GRID, INK, MUTED, tick_step
from app.responses.models import COMMITMENT_LABELS, RESPONSE_LABELS

FONTS = Path(__file__).parent / "fonts"
FAMILY = "DejaVu"
CREATOR = "Undersigned"
REPLACEMENT = "\ufffd"
# The total page count, filled in as the document closes. Made of control characters, which `_Document.clean`
# removes from every text it prints, so nothing anyone writes can turn into the page count. Three characters:
# fpdf2 reserves the width of as many digits.
PAGE_COUNT = "\x1d\x1d\x1d"
MARGIN = 18.0  # mm, on every side
WIDTH = 210 - 2 * MARGIN  # between the margins of an A4 page
COUNT_COLUMNS = (WIDTH - 70, 70.0)  # a label, then a number (or why there is none)
FOOTER_LINE = 3.6  # mm, a line of the footer's small type
BODY_SIZE = 9.5
SMALL_SIZE = 8.0
LINE = 4.6  # mm, a line of body text
RULE = "#e3e6ea"  # between table rows
HEADING_FILL = "#eef0f3"
VISIBILITY_LABELS = {"public": "Public", "organizers": "Organizers only"}
TALLY_VISIBILITY = (
    ("public", "Names shown publicly"),
    ("organizers", "Names shown to organizers only"),
    ("anonymous", "Anonymous"),
)

Row = Sequence[str]


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _utc(moment: datetime) -> datetime:
    """Times are stored in UTC; a naive one is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _when(moment: datetime) -> str:
    moment = _utc(moment)
    return f"{_day(moment)}, {moment:%H:%M} UTC"


def _label(value: str) -> str:
    return value.replace("_", " ").capitalize()


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _visual(line: str) -> str:
    """A line in the order it is seen: fpdf2 reorders right-to-left text only when it shapes text (HarfBuzz),
    so a line with Arabic or Hebrew in it is put in visual order here, with fpdf2's own bidi algorithm."""
    if any(unicodedata.bidirectional(char) in ("R", "AL") for char in line):
        return BidiParagraph(line).get_reordered_string()
    return line


class _Document(FPDF):
    """An A4 page with DejaVu Sans, a footer (`footer_text`, "Page n of N"), and helpers that clean, wrap and
    break every piece of text they print."""

    def _added_font(self, style: str) -> TTFFont:
        font = self.fonts[FAMILY.lower() + style]
        assert isinstance(font, TTFFont)  # added from a .ttf file just above, never one of PDF's core fonts
        return font

    def __init__(
        self,
        *,
        title: str,
        subject: str,
        organization: str,
        generated_at: datetime,
        footer_text: str,
        tagged: bool = False,
    ) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.tagged = tagged
        self._mcids: dict[int, int] = {}  # page -> marked-content ids used on it
        self.add_font(FAMILY, "", str(FONTS / "DejaVuSans.ttf"))
        self.add_font(FAMILY, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        self.add_font(FAMILY, "I", str(FONTS / "DejaVuSans-Oblique.ttf"))
        self.add_font(FAMILY, "BI", str(FONTS / "DejaVuSans-BoldOblique.ttf"))
        regular, bold, italic, bold_italic = (self._added_font(style) for style in ("", "B", "I", "BI"))
        self.covered = frozenset(regular.cmap) & frozenset(bold.cmap)  # what both weights can print
        # The obliques lack some scripts (Arabic, Hebrew...): Markdown with them prints without styles.
        self.covered_italic = self.covered & frozenset(italic.cmap) & frozenset(bold_italic.cmap)
        self.replaced = 0  # characters printed as REPLACEMENT because the font has no glyph for them
        self._widths: dict[tuple[str, str, float], float] = {}
        self.footer_text = self.clean(footer_text, single_line=True)
        self.set_title(title)
        self.set_subject(subject)
        self.set_author(organization)  # the organization, never a signer
        self.set_creator(CREATOR)
        self.set_lang("en")
        # Readers show the title, not the file name (PDF/UA asks for both the language and this).
        self.viewer_preferences = ViewerPreferences(display_doc_title=True)
        self.set_creation_date(_utc(generated_at))
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.alias_nb_pages(PAGE_COUNT)
        self.set_text_color(*_rgb(INK))
        self.add_page()
        # The footer wraps, whole, over as many lines as it needs (it was cut short with "…"), beside the page
        # number; the body stops above however many that is. (Measured on a page: fpdf2 lays out only on one.)
        self.set_font(FAMILY, size=SMALL_SIZE)
        self._page_width = self.get_string_width("Page 999 of 999") + 2 * self.c_margin + 1
        self._footer_lines = self._wrap(self.footer_text, WIDTH - self._page_width)
        self.footer_height = 4 + len(self._footer_lines) * FOOTER_LINE
        self.set_auto_page_break(True, margin=MARGIN + self.footer_height)
        self.set_font(FAMILY, size=BODY_SIZE)

    # -- text --------------------------------------------------------------------------------------------------

    def clean(self, text: str, *, single_line: bool = False) -> str:
        """Text the font can print: a character it has no glyph for becomes REPLACEMENT (invisible ones, such as
        a zero-width joiner or an emoji variation selector, are dropped), control characters go, tabs become
        spaces, and every line break becomes "\\n" (or a space, for a single line)."""
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
        if single_line:
            text = " ".join(text.split())
        out: list[str] = []
        for char in text:
            if char == "\n" or ord(char) in self.covered:
                out.append(char)
                continue
            category = unicodedata.category(char)
            if category in ("Zl", "Zp"):
                out.append(" " if single_line else "\n")
            elif category not in ("Cc", "Cf", "Mn", "Me"):
                out.append(REPLACEMENT)
                self.replaced += 1
        return "".join(out)

    def style(self, *, size: float = BODY_SIZE, bold: bool = False, colour: str = INK) -> None:
        self.set_font(FAMILY, "B" if bold else "", size)
        self.set_text_color(*_rgb(colour))

    # -- structure (a tagged PDF) ------------------------------------------------------------------------------
    # fpdf2 2.8 tags only images and links given alt_text, and section titles it draws itself, each as a /Figure.
    # The delivery report tags all it prints the same way, through the calls image(alt_text=...) makes: each
    # piece of text is a structure element (/H1, /H2, /H3, /P) in reading order, the chart a /Figure with its text
    # alternative, and the footer, page numbers and table rules are artifacts a screen reader skips. An element
    # never crosses a page: callers break the page first. What fpdf2 offers no way to build is said in
    # test_reports_pdf.py (tables, lists and nesting are not tagged as such).

    @contextmanager
    def marked(self, struct_type: str, *, alt_text: str | None = None) -> Iterator[None]:
        """What is printed inside is one element of the document's structure."""
        if not self.tagged:
            yield
            return
        page = self.page
        mcid = self._mcids.get(page, 0)  # counted here: fpdf2's own count walks every element on every call
        self._mcids[page] = mcid + 1
        self._add_marked_content(struct_type=struct_type, mcid=mcid, alt_text=alt_text)
        self._out(f"{struct_type} <</MCID {mcid}>> BDC")
        yield
        assert self.page == page, "a structure element crossed a page"
        self._out("EMC")

    @contextmanager
    def artifact(self) -> Iterator[None]:
        """Page furniture (footer, page numbers, rules): not content, skipped by screen readers."""
        if self.tagged:
            self._out("/Artifact BMC")
        yield
        if self.tagged:
            self._out("EMC")

    def line_of(
        self,
        text: str,
        *,
        size: float = BODY_SIZE,
        bold: bool = False,
        colour: str = INK,
        height: float = LINE,
        tag: str = "/P",
    ) -> None:
        """One line across the page; text too long for it wraps."""
        self.paragraph(text, size=size, bold=bold, colour=colour, height=height, single_line=True, tag=tag)

    def paragraph(
        self,
        text: str,
        *,
        size: float = BODY_SIZE,
        bold: bool = False,
        colour: str = INK,
        height: float = LINE,
        single_line: bool = False,
        tag: str = "/P",
    ) -> None:
        """Text across the page, wrapped, breaking across pages; its line breaks are kept. Tagged (`tag`) a page
        at a time."""
        self.style(size=size, bold=bold, colour=colour)
        lines = self._wrap(self.clean(text, single_line=single_line), self.epw)
        while lines:
            if self.will_page_break(height):
                self.add_page()
                self.style(size=size, bold=bold, colour=colour)
            room = max(1, int((self.page_break_trigger - self.get_y() - 1e-6) // height))
            with self.marked(tag):
                for line in lines[:room]:
                    self.set_x(self.l_margin)
                    self.cell(self.epw, height, _visual(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            lines = lines[room:]

    def heading(self, text: str, *, size: float = 12.5, keep: float = 4 * LINE) -> None:
        """A section heading, kept on the page of the first `keep` millimetres of what follows it, and listed in
        the document's outline (the bookmarks a reader and a screen reader navigate by)."""
        if self.will_page_break(4 + size * 0.5 + 1.5 + keep):
            self.add_page()
        self.ln(4)
        self.start_section(self.clean(text, single_line=True))
        self.line_of(text, size=size, bold=True, height=size * 0.5, tag="/H2")
        self.ln(1.5)

    def gap(self, height: float = 2.0) -> None:
        self.ln(height)

    def markdown(self, text: str, *, colour: str = INK) -> None:
        """Markdown people wrote, printed as they meant it: paragraphs, lists, quotes, bold, italics and links,
        never the asterisks. A block in a right-to-left script, or with characters the oblique fonts lack where
        italics are asked for, prints without styles (fpdf2 reorders styled text only when it shapes text)."""
        indent, bullet_width = 6.0, 5.0
        for number, block in enumerate(pdf_markdown.blocks(text, clean=self.clean)):
            if number:
                self.ln(0.8 if block.kind == "item" else 2.0)
            x = self.l_margin + block.depth * indent
            tag = "/H3" if block.kind == "heading" else "/P"
            left = x + (bullet_width if block.kind == "item" else 0) + (indent / 2 if block.kind == "quote" else 0)
            width = self.l_margin + self.epw - left
            plain = pdf_markdown.ITALICS in block.markup and any(
                ord(char) not in self.covered_italic for char in block.plain if not char.isspace()
            )
            plain = plain or any(unicodedata.bidirectional(char) in ("R", "AL") for char in block.plain)
            self.style(bold=plain and block.kind == "heading", colour=MUTED if block.kind == "quote" else colour)
            lines = self._wrap(block.plain, width) if plain else None
            height = LINE * len(lines) if lines is not None else self._markdown_height(block.markup, width)
            # A block stays on one page when it fits on one (a tagged element never crosses a page); a longer
            # one prints line by line, without styles.
            if self.will_page_break(height):
                if height <= self.page_break_trigger - self.t_margin:
                    self.add_page()
                else:
                    lines = self._wrap(block.plain, width)
            self.style(
                bold=lines is not None and block.kind == "heading", colour=MUTED if block.kind == "quote" else colour
            )
            if lines is not None and len(lines) * LINE > self.page_break_trigger - self.get_y():
                self._long_block(block, lines, x=x, left=left, width=width, tag=tag)
                continue
            with self.marked(tag):
                if block.kind == "item" and block.bullet:
                    self.set_xy(x, self.get_y())
                    self.cell(bullet_width, LINE, block.bullet)
                self.set_xy(left, self.get_y())
                if lines is None:
                    self.multi_cell(width, LINE, block.markup, markdown=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                else:
                    for line in lines:
                        self.set_xy(left, self.get_y())
                        self.cell(width, LINE, _visual(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def _markdown_height(self, markup: str, width: float) -> float:
        height = self.multi_cell(width, LINE, markup, markdown=True, dry_run=True, output=MethodReturnValue.HEIGHT)
        assert isinstance(height, float | int)
        return float(height)

    def _long_block(
        self, block: pdf_markdown.Block, lines: list[str], *, x: float, left: float, width: float, tag: str
    ) -> None:
        """A block longer than a page: its lines, a page's worth to each element."""
        first = True
        while lines:
            if self.will_page_break(LINE):
                self.add_page()
            room = max(1, int((self.page_break_trigger - self.get_y() - 1e-6) // LINE))
            with self.marked(tag):
                if first and block.kind == "item" and block.bullet:
                    self.set_xy(x, self.get_y())
                    self.cell(5.0, LINE, block.bullet)
                for line in lines[:room]:
                    self.set_xy(left, self.get_y())
                    self.cell(width, LINE, _visual(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            lines, first = lines[room:], False

    # -- tables ------------------------------------------------------------------------------------------------

    def _width(self, text: str) -> float:
        """`get_string_width`, remembered: table columns repeat the same dates, labels and places."""
        key = (text, self.font_style, self.font_size_pt)
        if (width := self._widths.get(key)) is None:
            width = self._widths[key] = self.get_string_width(text)
        return width

    def _wrap(self, text: str, width: float) -> list[str]:
        """The lines a cell `width` wide shows `text` in; the common case (it fits) without a trial layout."""
        if "\n" not in text and self._width(text) <= width - 2 * self.c_margin:
            return [text]
        lines = self.multi_cell(width, LINE, text, dry_run=True, output=MethodReturnValue.LINES)
        assert isinstance(lines, list)
        return lines or [""]

    def _table_row(
        self,
        cells: Row,
        widths: Sequence[float],
        aligns: Sequence[Align],
        *,
        bold: bool,
        fill: bool,
        rule: bool,
        headings: Row | None,
        size: float,
    ) -> None:
        self.style(size=size, bold=bold)
        wrapped = [
            self._wrap(self.clean(text, single_line=True), width) for text, width in zip(cells, widths, strict=True)
        ]
        count = max(len(lines) for lines in wrapped)
        usable = self.page_break_trigger - self.t_margin - 2 * LINE  # a page's room under the column headings
        if self.will_page_break(count * LINE) and count * LINE <= usable:
            self._new_table_page(widths, aligns, headings, size)  # keep the row together: it fits on a page
        for index in range(count):
            if self.will_page_break(LINE):  # a row taller than a page continues on the next
                self._new_table_page(widths, aligns, headings, size)
            self.style(size=size, bold=bold)
            if fill:
                self.set_fill_color(*_rgb(HEADING_FILL))
            x, y = self.l_margin, self.get_y()
            for lines, width, align in zip(wrapped, widths, aligns, strict=True):
                text = lines[index] if index < len(lines) else ""
                if text or fill:
                    self.set_xy(x, y)
                    with self.marked("/P") if text else self.artifact():
                        self.cell(width, LINE, _visual(text), align=align, fill=fill)
                x += width
            self.set_xy(self.l_margin, y + LINE)
        if rule:
            self.set_draw_color(*_rgb(RULE))
            self.set_line_width(0.2)
            with self.artifact():
                self.line(self.l_margin, self.get_y(), self.l_margin + sum(widths), self.get_y())

    def _new_table_page(
        self, widths: Sequence[float], aligns: Sequence[Align], headings: Row | None, size: float
    ) -> None:
        self.add_page()
        if headings is not None:
            self._table_row(headings, widths, aligns, bold=True, fill=True, rule=False, headings=None, size=size)

    def data_table(
        self,
        rows: Iterable[Row],
        *,
        widths: Sequence[float],
        aligns: Sequence[Align] | None = None,
        headings: Row | None = None,
        total: Row | None = None,
        size: float = BODY_SIZE,
    ) -> None:
        """Rows of cells that wrap, then a `total` row in bold; a row stays on one page when it fits on one,
        and the headings repeat on every page."""
        aligns = aligns or [Align.L] * len(widths)
        if headings is not None:
            if self.will_page_break(3 * LINE):
                self.add_page()
            self._table_row(headings, widths, aligns, bold=True, fill=True, rule=False, headings=None, size=size)
        for row in rows:
            self._table_row(row, widths, aligns, bold=False, fill=False, rule=True, headings=headings, size=size)
        if total is not None:
            self._table_row(total, widths, aligns, bold=True, fill=False, rule=True, headings=headings, size=size)

    # -- page furniture ----------------------------------------------------------------------------------------

    def footer(self) -> None:
        top = self.h - MARGIN - self.footer_height + 4
        self.style(size=SMALL_SIZE, colour=MUTED)
        with self.artifact():
            for index, line in enumerate(self._footer_lines):
                self.set_xy(self.l_margin, top + index * FOOTER_LINE)
                self.cell(WIDTH - self._page_width, FOOTER_LINE, _visual(line))
            self.set_xy(self.l_margin + WIDTH - self._page_width, top)
            self.cell(self._page_width, FOOTER_LINE, f"Page {self.page_no()} of {PAGE_COUNT}", align=Align.R)

    def note_replacements(self) -> None:
        if self.replaced:
            self.gap(3)
            self.paragraph(
                f"{_plural(self.replaced, 'character')} that the font used here cannot show (for "
                f"example Chinese, Japanese or Korean script, or emoji) "
                f"{'is' if self.replaced == 1 else 'are'} printed as {REPLACEMENT}. The CSV, JSON and "
                "XLSX exports give every text exactly as written.",
                size=SMALL_SIZE,
                colour=MUTED,
            )

    def finish(self) -> bytes:
        return bytes(self.output())


# -- the delivery report --------------------------------------------------------------------------------------


def _chart(pdf: _Document, report: TallyReport) -> None:
    """Signatures over time: the page's bars (by day, or by week when there are too many days)."""
    labels, values = tally.over_time(report)
    weekly = len(report.by_day) > tally.MAX_BARS
    label_size, plot_height, axis_width = 6.5, 55.0, 14.0
    pdf.heading("Signatures over time", keep=LINE + 6 + plot_height + 9 + 2 * LINE if labels else 2 * LINE)
    if not labels:
        pdf.paragraph("No signatures yet.")
        return
    pdf.line_of(f"{'By week (weeks from Monday)' if weekly else 'By day'}, in UTC.", size=SMALL_SIZE, colour=MUTED)
    step = tick_step(max(values))
    top_value = max(step, step * math.ceil(max(values) / step))
    left, right = pdf.l_margin + axis_width, pdf.w - pdf.r_margin
    top = pdf.get_y() + 6
    bottom = top + plot_height

    def y_of(value: float) -> float:
        return bottom - value / top_value * plot_height

    total = sum(values)
    busiest = max(range(len(values)), key=lambda i: values[i])  # the earliest of equals
    period = "week" if weekly else "day"
    summary = (
        f"{_plural(total, 'signature')} over {_plural(len(labels), period)}, {labels[0]} to "
        f"{labels[-1]}; the most in one {period}: {values[busiest]:,} ({labels[busiest]})."
    )
    # The bars, axis and labels are one figure to a screen reader, read as its text alternative.
    with pdf.marked("/Figure", alt_text=f"Bar chart of signatures by {period}. {summary}"):
        pdf.style(size=label_size, colour=MUTED)
        pdf.set_xy(left, top - 5)
        pdf.cell(40, 3, "Signatures")
        pdf.set_line_width(0.2)
        for tick in range(0, top_value + 1, step):
            if tick:
                pdf.set_draw_color(*_rgb(GRID))
                pdf.line(left, y_of(tick), right, y_of(tick))
            pdf.set_xy(pdf.l_margin, y_of(tick) - 1.5)
            pdf.cell(axis_width - 2, 3, f"{tick:,}", align=Align.R)

        band = (right - left) / len(labels)
        bar_width = min(band * 0.6, 16.0)
        pdf.set_fill_color(*_rgb(tally.CHART_COLOUR))
        for index, value in enumerate(values):
            if value:
                centre = left + band * (index + 0.5)
                pdf.rect(centre - bar_width / 2, y_of(value), bar_width, bottom - y_of(value), style="F")
        pdf.set_draw_color(*_rgb(INK))
        pdf.line(left, bottom, right, bottom)

        # Labels on two lines, as on the page; every n-th when they would not fit under their bars.
        pdf.style(size=label_size)
        split = [label.split(" ", 1) for label in labels]
        widest = max(pdf.get_string_width(word) for words in split for word in words) + 1
        every = max(1, math.ceil(widest / band))
        for index, words in enumerate(split):
            if index % every:
                continue
            centre = left + band * (index + 0.5)
            for line, word in enumerate(words):
                pdf.set_xy(centre - widest / 2, bottom + 1 + line * 3)
                pdf.cell(widest, 3, word, align=Align.C)
    pdf.set_xy(pdf.l_margin, bottom + 9)
    pdf.paragraph(summary, size=SMALL_SIZE, colour=MUTED)


def _breakdown(pdf: _Document, breakdown: Breakdown, *, min_group_size: int) -> None:
    suppressed = suppressed_note(min_group_size)
    pdf.data_table(
        ((cell.label, suppressed if cell.count is None else f"{cell.count:,}") for cell in breakdown.cells),
        widths=COUNT_COLUMNS,
        aligns=(Align.L, Align.R),
        headings=(breakdown.kind.capitalize(), "Signatures"),
        total=("Total", f"{breakdown.total:,}"),
    )


def tally_pdf(report: TallyReport, *, organization: str) -> bytes:
    """The delivery report: the petition as signed, its tally, thresholds, chart, breakdowns and responses."""
    pdf = _Document(
        title=f"Petition #{report.petition_id}: {report.title} (delivery report)",
        subject="Delivery report: the petition, its signature count, and the responses to it",
        organization=organization,
        generated_at=report.generated_at,
        footer_text=f"{organization} · Petition #{report.petition_id}: {report.title} · "
        f"generated {_when(report.generated_at)}",
        tagged=True,
    )
    pdf.line_of(organization, size=SMALL_SIZE, colour=MUTED)
    pdf.line_of(f"Delivery report · Petition #{report.petition_id}", size=SMALL_SIZE, colour=MUTED)
    pdf.gap(2)
    pdf.paragraph(report.title, size=18, bold=True, height=8, tag="/H1")
    pdf.gap(3)
    facts = [
        ("State", _label(report.state)),
        ("Text", f"Version {report.version}" + (" (as first published)" if report.version == 0 else "")),
        ("Text SHA-256", report.content_hash),
    ]
    if report.decision_maker:
        facts.append(("Decision-maker", report.decision_maker))
    if report.opened_at:
        facts.append(("Opened", _when(report.opened_at)))
    if report.closed_at:
        facts.append(("Closed", _when(report.closed_at)))
    facts.append(("Generated", _when(report.generated_at)))
    pdf.data_table(facts, widths=(36, WIDTH - 36), size=SMALL_SIZE + 0.5)

    pdf.heading("The ask")
    pdf.paragraph(report.ask)
    if report.background.strip():
        pdf.heading("Background")
        pdf.markdown(report.background)

    pdf.heading("Signatures")
    counts = [
        ("Signatures counted", f"{report.signature_count:,}"),
        *((label, f"{report.by_visibility.get(key, 0):,}") for key, label in TALLY_VISIBILITY),
        ("Withdrawn by their signers", f"{report.withdrawal_count:,}"),
        ("Voided by the moderators", f"{report.voided_count:,}"),
    ]
    pdf.data_table(counts, widths=COUNT_COLUMNS, aligns=(Align.L, Align.R))
    pdf.gap()
    pdf.paragraph(
        f"Counted as of {_when(report.generated_at)}. Withdrawn and voided signatures are not counted.",
        size=SMALL_SIZE,
        colour=MUTED,
    )

    pdf.heading("Thresholds")
    if report.thresholds:
        pdf.data_table(
            (
                (
                    f"{_label(threshold.kind)} threshold: {_plural(threshold.signatures, 'signature')}",
                    f"reached {_when(threshold.reached_at)}" if threshold.reached_at else "not yet reached",
                )
                for threshold in report.thresholds
            ),
            widths=COUNT_COLUMNS,
            aligns=(Align.L, Align.R),
        )
    else:
        pdf.paragraph("This petition has no thresholds.")

    _chart(pdf, report)

    breakdowns = [breakdown for breakdown in (report.departments, report.locations) if breakdown is not None]
    if breakdowns:
        pdf.heading("Where signers work")
        pdf.paragraph(
            f"Small-group suppression: a group with fewer than {report.min_group_size} signatures is "
            "not shown, nor is any count from which one could be worked out, so that no small group of "
            "signers can be singled out. The totals include every signature.",
            size=SMALL_SIZE,
            colour=MUTED,
        )
        for breakdown in breakdowns:
            pdf.gap(3)
            _breakdown(pdf, breakdown, min_group_size=report.min_group_size)

    pdf.heading("Responses")
    if not report.responses:
        pdf.paragraph("No response has been recorded.")
    for response in report.responses:
        if pdf.will_page_break(4 * LINE):
            pdf.add_page()
        pdf.gap()
        pdf.line_of(
            f"{_when(response.at)} · {RESPONSE_LABELS.get(response.status, _label(response.status))}",
            size=SMALL_SIZE,
            colour=MUTED,
        )
        pdf.paragraph(response.summary, bold=True)
        if response.details.strip():
            pdf.gap(1)
            pdf.markdown(response.details)

    pdf.heading("Commitments")
    if report.commitments:
        pdf.data_table(
            (
                (
                    commitment.text,
                    commitment.owner,
                    _day(commitment.due_on) if commitment.due_on else "",
                    COMMITMENT_LABELS.get(commitment.status, _label(commitment.status)),
                )
                for commitment in report.commitments
            ),
            widths=(WIDTH - 90, 40, 26, 24),
            headings=("Commitment", "Owner", "Due", "Status"),
        )
    else:
        pdf.paragraph("No commitment has been recorded.")

    if report.log_fingerprint is not None:
        pdf.heading("Signature log")
        pdf.line_of("Fingerprint of the signature log (its latest tree head):", size=SMALL_SIZE, colour=MUTED)
        pdf.paragraph(report.log_fingerprint, size=SMALL_SIZE + 0.5)
    pdf.note_replacements()
    return pdf.finish()


# -- the signer list ------------------------------------------------------------------------------------------


def signers_pdf(
    *,
    title: str,
    petition_id: int,
    generated_at: datetime,
    rows: Iterable[SignerRow],
    organization: str,
    total: int | None = None,
) -> bytes:
    """The names signers chose to show, one a line; anonymous signers are never in it (a row for one is an
    error, not something to print)."""
    signers = list(rows)  # counted in the heading, before the table
    for row in signers:
        if row.visibility not in VISIBILITY_LABELS:
            raise ValueError(f"a signer list holds only names signers chose to show, not {row.visibility!r}")
    pdf = _Document(
        title=f"Petition #{petition_id}: {title} (signer list)",
        subject="The names signers chose to show",
        organization=organization,
        generated_at=generated_at,
        footer_text=f"{organization} · Petition #{petition_id}: {title} · signer list · "
        f"generated {_when(generated_at)}",
    )
    pdf.line_of(organization, size=SMALL_SIZE, colour=MUTED)
    pdf.line_of(f"Signer list · Petition #{petition_id}", size=SMALL_SIZE, colour=MUTED)
    pdf.gap(2)
    pdf.paragraph(title, size=16, bold=True, height=7)
    pdf.gap(2)
    pdf.line_of(f"{_plural(len(signers), 'name')} as of {_when(generated_at)}.", bold=True)
    if total is not None and total > len(signers):
        pdf.paragraph(
            f"The newest {len(signers):,} of {total:,} names: the CSV, JSON and XLSX exports hold them all.",
            size=SMALL_SIZE,
            colour=MUTED,
        )
    pdf.paragraph(
        "Only the names signers chose to show are listed: publicly, or to the organizers only. "
        "Anonymous signers are never listed.",
        size=SMALL_SIZE,
        colour=MUTED,
    )
    pdf.paragraph(
        "For the organizers only: signers were promised that leadership and colleagues see only counts "
        "(of departments and locations, only of groups large enough to protect people). To deliver the "
        "petition, hand over the delivery report, not this list.",
        size=SMALL_SIZE,
        bold=True,
    )
    pdf.gap(3)

    with_department = any(row.department for row in signers)  # a column nobody has a value for is left out
    with_location = any(row.location for row in signers)
    optional = 36.0
    columns = [
        ("No.", 12.0, Align.R),
        ("Name", WIDTH - 12 - 28 - 24 - optional * (with_department + with_location), Align.L),
        ("Visibility", 28.0, Align.L),
        ("Signed on", 24.0, Align.L),
    ]
    if with_department:
        columns.append(("Department", optional, Align.L))
    if with_location:
        columns.append(("Location", optional, Align.L))

    def cells(number: int, row: SignerRow) -> list[str]:
        values = [f"{number:,}", row.name, VISIBILITY_LABELS[row.visibility], _day(row.signed_on)]
        if with_department:
            values.append(row.department or "")
        if with_location:
            values.append(row.location or "")
        return values

    if signers:
        pdf.data_table(
            (cells(number, row) for number, row in enumerate(signers, start=1)),
            widths=[width for _, width, _ in columns],
            aligns=[align for _, _, align in columns],
            headings=[heading for heading, _, _ in columns],
            size=SMALL_SIZE + 0.5,
        )
    else:
        pdf.paragraph("No signer has chosen to show their name.")
    pdf.note_replacements()
    return pdf.finish()
