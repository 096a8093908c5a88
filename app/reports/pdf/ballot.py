"""A poll's result as a PDF (issue #25): the third download beside the CSV and the JSON, for a meeting's handout or
a notice board.

It prints what `app.reports.ballots.BallotReport` holds, which is what `app.ballots.service.results` decided to
publish: while the result is kept until the close, or below the poll's minimum of answers, the PDF says so in
words and holds no figure, exactly as the page, the CSV and the JSON do; it reads no answer itself. The figures
are a table (option, answers, share; for ranked choice, every round of the instant runoff), the same numbers the
page's bar chart draws.
"""

from __future__ import annotations

from datetime import datetime

from fpdf.enums import Align

from app.models.ballots import BallotKind
from app.reports.ballots import BallotReport
from app.reports.model import suppressed_note
from app.reports.pdf.document import (
    SMALL_SIZE,
    WIDTH,
    Document,
    label_text,
    plural_text,
    report_document,
    when_text,
)
from app.responses.chart import MUTED

KIND_TEXT = {
    BallotKind.single: "One choice",
    BallotKind.multiple: "Several choices",
    BallotKind.scale: "Agreement scale",
    BallotKind.ranked: "Ranked choice (instant runoff)",
}


def ballot_pdf(
    report: BallotReport,
    *,
    organization: str,
    generated_at: datetime,
    opens_at: datetime,
    closes_at: datetime,
    address: str,
) -> bytes:
    """The poll's question, facts and, when the result is shown, its figures; otherwise why there are none."""
    facts = [
        ("State", label_text(report.state.value)),
        ("Kind", KIND_TEXT[report.kind]),
        ("Opens" if opens_at > generated_at else "Opened", when_text(opens_at)),
        ("Closes" if closes_at > generated_at else "Closed", when_text(closes_at)),
        ("Answers counted", f"{report.answers_counted:,}"),
        ("Figures shown from", plural_text(report.min_answers, "answer")),
        ("Generated", when_text(generated_at)),
    ]
    pdf = report_document(
        organization=organization,
        generated_at=generated_at,
        about=f"Poll #{report.ballot_id}",
        name=report.question,
        kind="poll result",
        subject="A poll's result, as its page shows it",
        facts=facts,
    )

    pdf.heading("Result")
    if report.status == "hidden":
        pdf.paragraph(
            "Results are shown once the poll closes, so that early answers do not sway later ones. "
            "This document holds no figures: download it again after the close."
        )
        _options(pdf, report)
    elif report.status == "not_enough":
        pdf.paragraph(
            f"Not enough answers yet: figures are shown from {plural_text(report.min_answers, 'answer')} on, "
            "so that a small group's answers are not exposed. This document holds no figures."
        )
        _options(pdf, report)
    elif report.rounds:
        _rounds(pdf, report)
    else:
        _rows(pdf, report)
    if report.breakdown is not None:
        _breakdown(pdf, report)
    pdf.gap(3)
    pdf.paragraph(
        f"Anyone can check the count from the poll's public log: undersigned verify {address}",
        size=SMALL_SIZE,
        colour=MUTED,
    )
    pdf.note_replacements()
    return pdf.finish()


def _options(pdf: Document, report: BallotReport) -> None:
    pdf.heading("The options", keep=2 * 4.6)
    pdf.data_table(
        ((f"{position + 1}", label) for position, label in enumerate(report.labels)),
        widths=(12, WIDTH - 12),
        aligns=(Align.R, Align.L),
    )


def _rows(pdf: Document, report: BallotReport) -> None:
    several = " (each could choose several options)" if report.kind is BallotKind.multiple else ""
    people = f"{report.answered:,} {'person' if report.answered == 1 else 'people'}"
    pdf.line_of(f"What {people} answered{several}.", bold=True)
    pdf.gap(1)
    most = max((row.count for row in report.rows), default=0)
    pdf.data_table(
        (
            (row.label + (" (most)" if most and row.count == most else ""), f"{row.count:,}", f"{row.share}%")
            for row in report.rows
        ),
        widths=(WIDTH - 60, 30, 30),
        aligns=(Align.L, Align.R, Align.R),
        headings=("Option", "Answers", "Share"),
    )


def _rounds(pdf: Document, report: BallotReport) -> None:
    if report.winner is not None:
        pdf.line_of(
            f"“{report.winner}” wins, by instant runoff over {plural_text(report.answered, 'ranked answer')}.",
            bold=True,
        )
    else:
        pdf.line_of("No option won a majority of the answers still counting.", bold=True)
    pdf.paragraph(
        "Each round, every answer counts for its highest-ranked option still standing. An option with more than "
        "half of those answers wins; otherwise the option with the fewest is dropped and its answers move to "
        "their next choice. An answer with no option left is exhausted.",
        size=SMALL_SIZE,
        colour=MUTED,
    )
    pdf.gap(1)
    rows: list[tuple[str, str, str, str]] = []
    for number, round_ in enumerate(report.rounds, start=1):
        for position, label in enumerate(report.labels):
            count = round_.counts[position]
            if count is None:
                continue  # dropped in an earlier round
            note = "dropped" if round_.eliminated == position else "wins" if round_.winner == position else ""
            rows.append((f"{number}", label, f"{count:,}", note))
        rows.append((f"{number}", "Exhausted", f"{round_.exhausted:,}", ""))
    pdf.data_table(
        rows,
        widths=(16, WIDTH - 16 - 30 - 24, 30, 24),
        aligns=(Align.R, Align.L, Align.R, Align.L),
        headings=("Round", "Option", "Answers", "Note"),
    )


def _breakdown(pdf: Document, report: BallotReport) -> None:
    """The result by department or location, with the page's suppressed cells; a row per group and option, so any
    number of options fits the page."""
    found = report.breakdown
    if found is None:
        return
    pdf.heading("By department or location", keep=3 * 4.6)
    if found.status == "hidden":
        pdf.paragraph(
            "Shown once the poll closes and its last answers are counted, never while it is open: figures that "
            "change as answers arrive would tell which group each new answer came from."
        )
        return
    if found.status == "not_enough":
        pdf.paragraph(f"Not shown: figures need {plural_text(found.min_group_size, 'answer')} or more.")
        return
    first = " (first choices)" if report.kind is BallotKind.ranked else ""
    pdf.paragraph(
        f"Each answer counts under the group its sender chose, or under “Not given”{first}. A figure marked "
        f"{suppressed_note(found.min_group_size)} is left out because it, or a figure that would reveal it, is "
        "under that size. How many people of each group answered is not shown.",
        size=SMALL_SIZE,
        colour=MUTED,
    )
    pdf.gap(1)
    pdf.data_table(
        (
            (row.name, label, "suppressed" if cell.count is None else f"{cell.count:,}")
            for row in found.rows
            for label, cell in zip(report.labels, row.cells, strict=True)
        ),
        widths=(60, WIDTH - 60 - 30, 30),
        aligns=(Align.L, Align.L, Align.R),
        headings=("Group", "Option", "Answers"),
    )
