"""The delivery report organizers hand to leadership: the petition as signed, its tally, thresholds, the chart
of signatures over time, breakdowns and responses."""

from __future__ import annotations

import math

from fpdf.enums import Align

from app.models.responses import COMMITMENT_LABELS, RESPONSE_LABELS
from app.reports import tally
from app.reports.model import Breakdown, TallyReport, suppressed_note
from app.reports.pdf.document import (
    COUNT_COLUMNS,
    LINE,
    SMALL_SIZE,
    WIDTH,
    Document,
    day_text,
    label_text,
    plural_text,
    report_document,
    rgb,
    when_text,
)
from app.responses.chart import GRID, INK, MUTED, tick_step

TALLY_VISIBILITY = (
    ("public", "Names shown publicly"),
    ("organizers", "Names shown to organizers only"),
    ("anonymous", "Anonymous"),
)


def _chart(pdf: Document, report: TallyReport) -> None:
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
        f"{plural_text(total, 'signature')} over {plural_text(len(labels), period)}, {labels[0]} to "
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
                pdf.set_draw_color(*rgb(GRID))
                pdf.line(left, y_of(tick), right, y_of(tick))
            pdf.set_xy(pdf.l_margin, y_of(tick) - 1.5)
            pdf.cell(axis_width - 2, 3, f"{tick:,}", align=Align.R)

        band = (right - left) / len(labels)
        bar_width = min(band * 0.6, 16.0)
        pdf.set_fill_color(*rgb(tally.CHART_COLOUR))
        for index, value in enumerate(values):
            if value:
                centre = left + band * (index + 0.5)
                pdf.rect(centre - bar_width / 2, y_of(value), bar_width, bottom - y_of(value), style="F")
        pdf.set_draw_color(*rgb(INK))
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


def _breakdown(pdf: Document, breakdown: Breakdown, *, min_group_size: int) -> None:
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
    facts = [
        ("State", label_text(report.state)),
        ("Text", f"Version {report.version}" + (" (as first published)" if report.version == 0 else "")),
        ("Text SHA-256", report.content_hash),
    ]
    if report.decision_maker:
        facts.append(("Decision-maker", report.decision_maker))
    if report.opened_at:
        facts.append(("Opened", when_text(report.opened_at)))
    if report.closed_at:
        facts.append(("Closed", when_text(report.closed_at)))
    facts.append(("Generated", when_text(report.generated_at)))
    pdf = report_document(
        organization=organization,
        generated_at=report.generated_at,
        about=f"Petition #{report.petition_id}",
        name=report.title,
        kind="delivery report",
        subject="Delivery report: the petition, its signature count, and the responses to it",
        facts=facts,
        name_size=18,
        label_width=36,
    )

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
        f"Counted as of {when_text(report.generated_at)}. Withdrawn and voided signatures are not counted.",
        size=SMALL_SIZE,
        colour=MUTED,
    )

    pdf.heading("Thresholds")
    if report.thresholds:
        pdf.data_table(
            (
                (
                    f"{label_text(threshold.kind)} threshold: {plural_text(threshold.signatures, 'signature')}",
                    f"reached {when_text(threshold.reached_at)}" if threshold.reached_at else "not yet reached",
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
            f"{when_text(response.at)} · {RESPONSE_LABELS.get(response.status, label_text(response.status))}",
            size=SMALL_SIZE,
            colour=MUTED,
        )
        pdf.paragraph(response.summary, bold=True)
        if response.details.strip():
            pdf.gap(1)
            pdf.markdown(response.details)

    if report.ratifications:
        pdf.heading("What the signers said of the responses")
        pdf.paragraph(
            "The organizers asked the petition's signers, anonymously, whether leadership's response answers the "
            "petition. Accepted counts the Yes answers only; Partly is shown beside it.",
            size=SMALL_SIZE,
            colour=MUTED,
        )
        pdf.data_table(
            (
                (
                    f"Poll closed {when_text(line.closed_at)}",
                    (
                        f"accepted by {line.accepted_share}% of {plural_text(line.answered, 'signer')} who answered "
                        f"(partly: {line.partly_share}%, no: {line.no_share}%)"
                    ),
                )
                for line in report.ratifications
            ),
            widths=(50, WIDTH - 50),
        )

    pdf.heading("Commitments")
    if report.commitments:
        pdf.data_table(
            (
                (
                    commitment.text,
                    commitment.owner,
                    day_text(commitment.due_on) if commitment.due_on else "",
                    COMMITMENT_LABELS.get(commitment.status, label_text(commitment.status)),
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
