"""The PDF toolkit the reports and the poster share: an A4 page in DejaVu Sans with a footer, and helpers
that clean, wrap and break every piece of text they print."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from fpdf import FPDF, ViewerPreferences
from fpdf.bidi import BidiParagraph
from fpdf.enums import Align, MethodReturnValue, XPos, YPos
from fpdf.fonts import TTFFont

from app.reports import pdf_markdown
from app.responses.chart import INK, MUTED

FONTS = Path(__file__).parent.parent / "fonts"


FAMILY = "DejaVu"


CREATOR = "Undersigned"


REPLACEMENT = "\ufffd"


# The total page count, filled in as the document closes. Made of control characters, which `Document.clean`
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


Row = Sequence[str]


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def as_utc(moment: datetime) -> datetime:
    """Times are stored in UTC; a naive one is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def day_text(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def when_text(moment: datetime) -> str:
    moment = as_utc(moment)
    return f"{day_text(moment)}, {moment:%H:%M} UTC"


def label_text(value: str) -> str:
    return value.replace("_", " ").capitalize()


def plural_text(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def visual(line: str) -> str:
    """A line in the order it is seen: fpdf2 reorders right-to-left text only when it shapes text (HarfBuzz),
    so a line with Arabic or Hebrew in it is put in visual order here, with fpdf2's own bidi algorithm."""
    if any(unicodedata.bidirectional(char) in ("R", "AL") for char in line):
        return BidiParagraph(line).get_reordered_string()
    return line


class Document(FPDF):
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
        self.set_creation_date(as_utc(generated_at))
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.alias_nb_pages(PAGE_COUNT)
        self.set_text_color(*rgb(INK))
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
        self.set_text_color(*rgb(colour))

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
                    self.cell(self.epw, height, visual(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
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
                        self.cell(width, LINE, visual(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

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
                    self.cell(width, LINE, visual(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
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
                self.set_fill_color(*rgb(HEADING_FILL))
            x, y = self.l_margin, self.get_y()
            for lines, width, align in zip(wrapped, widths, aligns, strict=True):
                text = lines[index] if index < len(lines) else ""
                if text or fill:
                    self.set_xy(x, y)
                    with self.marked("/P") if text else self.artifact():
                        self.cell(width, LINE, visual(text), align=align, fill=fill)
                x += width
            self.set_xy(self.l_margin, y + LINE)
        if rule:
            self.set_draw_color(*rgb(RULE))
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
                self.cell(WIDTH - self._page_width, FOOTER_LINE, visual(line))
            self.set_xy(self.l_margin + WIDTH - self._page_width, top)
            self.cell(self._page_width, FOOTER_LINE, f"Page {self.page_no()} of {PAGE_COUNT}", align=Align.R)

    def note_replacements(self) -> None:
        if self.replaced:
            self.gap(3)
            self.paragraph(
                f"{plural_text(self.replaced, 'character')} that the font used here cannot show (for "
                f"example Chinese, Japanese or Korean script, or emoji) "
                f"{'is' if self.replaced == 1 else 'are'} printed as {REPLACEMENT}. The CSV, JSON and "
                "XLSX exports give every text exactly as written.",
                size=SMALL_SIZE,
                colour=MUTED,
            )

    def finish(self) -> bytes:
        return bytes(self.output())


def report_document(
    *,
    organization: str,
    generated_at: datetime,
    about: str,
    name: str,
    kind: str,
    subject: str,
    facts: Iterable[Row],
    name_size: float = 16,
    label_width: float = 40,
) -> Document:
    """A tagged report (the delivery report, a poll's result) begun as each begins: the organization and the
    `kind` of report `about` what ("Petition #42") in small type, its `name` as the heading, then a table of
    `facts`; the title and every page's footer say the same."""
    pdf = Document(
        title=f"{about}: {name} ({kind})",
        subject=subject,
        organization=organization,
        generated_at=generated_at,
        footer_text=f"{organization} · {about}: {name} · generated {when_text(generated_at)}",
        tagged=True,
    )
    pdf.line_of(organization, size=SMALL_SIZE, colour=MUTED)
    pdf.line_of(f"{kind.capitalize()} · {about}", size=SMALL_SIZE, colour=MUTED)
    pdf.gap(2)
    # A line of the heading: 7 mm at 16 pt, 8 mm at 18 pt.
    pdf.paragraph(name, size=name_size, bold=True, height=name_size / 2 - 1, tag="/H1")
    pdf.gap(3)
    pdf.data_table(facts, widths=(label_width, WIDTH - label_width), size=SMALL_SIZE + 0.5)
    return pdf
