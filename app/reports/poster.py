"""The A4 poster for break rooms: the title, the ask, a QR code of the petition's address, the count as of today,
and the address in words for anyone without a camera.

Drawn with fpdf2 and the delivery report's document (DejaVu Sans, the same cleaning of characters the font
lacks, right-to-left lines in visual order). The QR code is drawn as PDF rectangles, module by module: a vector,
sharp on any printer. The count is the one the petition page shows, to the signature: the page publishes the total
to anyone, and the minimum group size protects breakdowns by group, which the poster has none of.

One page, always: the title and the ask shrink to fit their room, and an ask too long even at the smallest size
is cut with an ellipsis and a note that the full text is at the address.

Anyone may ask for a poster, signed out, and drawing one costs about half a second of a core. Each process keeps
the last posters it drew, by everything they print; a poster that must be drawn counts against one budget for all
readers (settings.rate_limit_poster), and past it the reader is asked to try again in a minute. A cache alone could
not bound the cost: a poster changes with every signature, and cycling through the public petitions outruns any
cache of bounded size. The budget is shared because the route reads no account (so that it answers everyone the
same, cacheably) and nothing here counts per client address; the worst a flood does is delay new posters for a
minute, while those already drawn are still served.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime

from fpdf.enums import Align, MethodReturnValue, XPos, YPos
from sqlalchemy.orm import Session

from app.core.errors import RateLimited
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.models.goals import Goal
from app.models.petitions import Petition
from app.organization import branding
from app.petitions.share import public_url, qr_matrix
from app.reports.pdf.document import MARGIN, REPLACEMENT, Document, rgb, visual
from app.responses.chart import INK, MUTED

PAGE_HEIGHT = 297.0
QR_SIZE = 78.0  # mm, quiet zone included: a phone reads it from a couple of metres
QR_QUIET_ZONE = 4  # modules, as the QR standard asks
TITLE_SIZES = (30.0, 26.0, 22.0, 18.0)  # pt, the largest at which the title fits TITLE_LINES lines
TITLE_LINES = 3
ASK_SIZES = (17.0, 15.0, 13.0, 11.5, 10.0)
ASK_ROOM = 62.0  # mm for the ask under its label
CUT = "…"
# Posters kept per process (about 35 KB each).
KEPT = 64
DRAWING = "poster-drawing"
EVERYONE = "everyone"


@dataclass(frozen=True)
class PosterFacts:
    """Everything the poster prints (hashable: a poster is drawn once per count and day, then reused)."""

    petition_id: int
    title: str
    ask: str
    url: str
    signable: bool
    signatures: int
    goal: Goal | None
    as_of: date
    organization: str


def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def _count_line(facts: PosterFacts) -> str:
    signatures = f"{facts.signatures:,} signature{'' if facts.signatures == 1 else 's'}"
    if not facts.signable:
        return f"Closed with {signatures}."
    if not facts.signatures:
        return "No signatures yet: be the first."
    return f"{signatures} so far."


def _progress_line(facts: PosterFacts) -> str | None:
    if facts.goal is None:
        return None
    goal = facts.goal
    when = "when leadership must respond" if goal.responds else "when the petition calls for a public answer"
    return f"{goal.remaining:,} more to reach {goal.signatures:,}, {when}."


class _Poster(Document):
    """The report's document with a footer of its own: one page has no page numbers."""

    def footer(self) -> None:
        self.set_y(-MARGIN - 4)
        self.style(size=8, colour=MUTED)
        self.cell(self.epw, 4, self.footer_text, align=Align.C)

    def lines(self, text: str, *, size: float, bold: bool = False) -> list[str]:
        self.style(size=size, bold=bold)
        found = self.multi_cell(
            self.epw, size * 0.45, self.clean(text, single_line=True), dry_run=True, output=MethodReturnValue.LINES
        )
        assert isinstance(found, list)
        return found

    def centred(self, lines: list[str], *, size: float, bold: bool = False, colour: str = INK) -> None:
        self.style(size=size, bold=bold, colour=colour)
        for line in lines:
            self.set_x(self.l_margin)
            self.cell(self.epw, size * 0.45, visual(line), align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def qr_code(self, url: str, *, top: float) -> None:
        matrix = qr_matrix(url)
        module = QR_SIZE / (len(matrix) + 2 * QR_QUIET_ZONE)
        left = (self.w - QR_SIZE) / 2 + QR_QUIET_ZONE * module
        self.set_fill_color(*rgb("#000000"))
        for row_index, row in enumerate(matrix):
            y = top + (QR_QUIET_ZONE + row_index) * module
            start = None
            for column, dark in enumerate((*row, False)):
                if dark and start is None:
                    start = column
                elif not dark and start is not None:
                    # A run of dark modules is one rectangle, a hair taller than a module so that no seam of
                    # white shows between rows when a viewer or printer smooths the edges.
                    self.rect(left + start * module, y, (column - start) * module, module + 0.05, style="F")
                    start = None


def _fitted(
    pdf: _Poster, text: str, sizes: tuple[float, ...], *, max_lines: int, bold: bool
) -> tuple[float, list[str]]:
    """The largest size at which `text` takes at most `max_lines` lines; at the smallest, the lines cut to fit."""
    for size in sizes:
        lines = pdf.lines(text, size=size, bold=bold)
        if len(lines) <= max_lines:
            return size, lines
    size = sizes[-1]
    lines = pdf.lines(text, size=size, bold=bold)[:max_lines]
    last = lines[-1]
    while last and pdf.get_string_width(last + CUT) > pdf.epw - 2 * pdf.c_margin:
        last = last[:-1]
    return size, [*lines[:-1], last.rstrip() + CUT]


def facts_of(*, db: Session, rt: Runtime, petition: Petition) -> PosterFacts:
    """What the poster of a public petition prints today, under the organization's name as its admins set it."""
    return PosterFacts(
        petition_id=petition.id,
        title=petition.title,
        ask=petition.ask,
        url=public_url(rt=rt, petition_id=petition.id),
        signable=petition.takes_signatures,
        signatures=petition.signature_count,
        goal=petition.next_goal,
        as_of=rt.clock.now().date(),
        organization=branding.current(db=db, rt=rt).name or rt.settings.organization_name,
    )


_kept: OrderedDict[PosterFacts, bytes] = OrderedDict()
_kept_lock = threading.Lock()


def poster(*, db: Session, rt: Runtime, petition: Petition) -> bytes:
    """The petition's poster: a copy drawn earlier with the same facts, or a new one if the budget allows."""
    facts = facts_of(db=db, rt=rt, petition=petition)
    with _kept_lock:
        pdf = _kept.get(facts)
        if pdf is not None:
            _kept.move_to_end(facts)
            return pdf
    try:
        rt.limiter.hit(action=DRAWING, subject=EVERYONE, rule=rt.settings.rate_limit_poster)
    except RateLimited as refused:
        raise RateLimited(
            N_("Many posters are being printed at the moment. Please try again in a minute."), headers=refused.headers
        ) from None
    pdf = poster_pdf(facts)
    with _kept_lock:
        _kept[facts] = pdf
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return pdf


def forget_kept() -> None:
    """Drop the kept posters (tests that count drawings start from none)."""
    with _kept_lock:
        _kept.clear()


def poster_pdf(facts: PosterFacts) -> bytes:
    generated = datetime(facts.as_of.year, facts.as_of.month, facts.as_of.day)
    pdf = _Poster(
        title=f"Petition #{facts.petition_id}: {facts.title} (poster)",
        subject=f"A poster for the petition at {facts.url}",
        organization=facts.organization,
        generated_at=generated,
        footer_text=f"{facts.organization} · Petition #{facts.petition_id} · printed from {facts.url}",
    )
    pdf.set_auto_page_break(False)

    pdf.centred(pdf.lines(facts.organization, size=10), size=10, colour=MUTED)
    pdf.ln(4)
    title_size, title_lines = _fitted(pdf, facts.title, TITLE_SIZES, max_lines=TITLE_LINES, bold=True)
    pdf.centred(title_lines, size=title_size, bold=True)
    pdf.ln(5)

    pdf.centred(["What we ask for"], size=11, colour=MUTED)
    pdf.ln(1)
    ask_lines_at = {size: int(ASK_ROOM // (size * 0.45)) for size in ASK_SIZES}
    whole = next(
        (
            (size, lines)
            for size in ASK_SIZES
            if len(lines := pdf.lines(facts.ask, size=size, bold=True)) <= ask_lines_at[size]
        ),
        None,
    )
    cut = whole is None
    ask_size, ask_lines = (
        whole
        if whole is not None
        else _fitted(pdf, facts.ask, ASK_SIZES[-1:], max_lines=ask_lines_at[ASK_SIZES[-1]], bold=True)
    )
    pdf.centred(ask_lines, size=ask_size, bold=True)
    if cut or pdf.replaced:
        pdf.ln(1)
        pdf.centred(
            [
                (
                    f"{'Shortened here' if cut else f'Characters this font lacks print as {REPLACEMENT}'}: "
                    "the whole text is at the address below."
                )
            ],
            size=9,
            colour=MUTED,
        )

    # The code, the count and the address sit at the foot of the page, wherever the text ended.
    bottom = PAGE_HEIGHT - MARGIN - 8
    address_top = bottom - 14
    count_top = address_top - 17
    qr_top = count_top - QR_SIZE - 2
    pdf.set_y(qr_top - 8)
    pdf.centred(["Scan to read and sign" if facts.signable else "Scan to read it"], size=13, bold=True)
    pdf.qr_code(facts.url, top=qr_top)

    pdf.set_y(count_top)
    pdf.centred([_count_line(facts)], size=16, bold=True)
    progress = _progress_line(facts)
    if progress:
        pdf.centred([progress], size=9.5, colour=MUTED)
    pdf.centred([f"Count as of {_day(facts.as_of)}."], size=9.5, colour=MUTED)

    pdf.set_y(address_top)
    pdf.centred(["Or go to"], size=10, colour=MUTED)
    pdf.centred(pdf.lines(facts.url, size=13, bold=True)[:2], size=13, bold=True)
    return pdf.finish()
