"""The list of the names signers chose to show (never an anonymous one)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from fpdf.enums import Align

from app.reports.model import SignerRow
from app.reports.pdf.document import (
    SMALL_SIZE,
    WIDTH,
    Document,
    day_text,
    plural_text,
    when_text,
)
from app.responses.chart import MUTED

VISIBILITY_LABELS = {"public": "Public", "organizers": "Organizers only"}


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
    pdf = Document(
        title=f"Petition #{petition_id}: {title} (signer list)",
        subject="The names signers chose to show",
        organization=organization,
        generated_at=generated_at,
        footer_text=f"{organization} · Petition #{petition_id}: {title} · signer list · "
        f"generated {when_text(generated_at)}",
    )
    pdf.line_of(organization, size=SMALL_SIZE, colour=MUTED)
    pdf.line_of(f"Signer list · Petition #{petition_id}", size=SMALL_SIZE, colour=MUTED)
    pdf.gap(2)
    pdf.paragraph(title, size=16, bold=True, height=7)
    pdf.gap(2)
    pdf.line_of(f"{plural_text(len(signers), 'name')} as of {when_text(generated_at)}.", bold=True)
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
        values = [f"{number:,}", row.name, VISIBILITY_LABELS[row.visibility], day_text(row.signed_on)]
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
