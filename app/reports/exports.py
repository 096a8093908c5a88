"""Exports: a petition's tally (CSV, JSON, XLSX, PDF) and its signer list (CSV, JSON, XLSX, PDF).

Signer lists are produced in chunks straight from a database cursor, so memory stays flat however many people
signed; tallies are small (aggregates) and built whole. Nothing here decides who may export what: the routes
and the command line do, and they record every export in the audit log.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import date, datetime
from json.encoder import encode_basestring
from typing import Any

import xlsxwriter
from sqlalchemy import DateTime, func, select, type_coerce
from sqlalchemy.orm import Session

from app.core.database import UTCDateTime, table_of
from app.core.runtime import Runtime
from app.models.signatures import Signature, SignerGroup, Visibility
from app.reports.model import Breakdown, SignerRow, TallyReport, suppressed_note
from app.signatures.service import name_context, shown_names

FORMATS = ("csv", "json", "xlsx", "pdf")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
CHUNK_ROWS = 5000
SIGNER_COLUMNS = ("name", "visibility", "signed_on", "department", "location")
# A printed list beyond this is not read by anyone; the CSV, JSON and XLSX lists have no limit.
PDF_SIGNER_LIMIT = 20_000
# Text stays text: XlsxWriter would otherwise write "=..." as a formula and "http..." as a link.
SAFE_WORKBOOK = {"strings_to_formulas": False, "strings_to_urls": False}


def filename(*, petition_id: int, kind: str, fmt: str) -> str:
    return f"petition-{petition_id}-{kind}.{fmt}"


# -- tally ----------------------------------------------------------------------------------------------------


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def tally_json(report: TallyReport) -> str:
    """The report as JSON; a suppressed cell's count is null and it says so."""
    data = asdict(report)
    data["by_day"] = [{"day": day, "signatures": count} for day, count in report.by_day]
    data["by_hour"] = [{"hour": hour, "signatures": count} for hour, count in report.by_hour]
    for kind in ("departments", "locations"):
        breakdown: Breakdown | None = getattr(report, kind)
        data[kind] = (
            None
            if breakdown is None
            else {
                "total": breakdown.total,
                "cells": [
                    {"label": cell.label, "signatures": cell.count, "suppressed": cell.count is None}
                    for cell in breakdown.cells
                ],
            }
        )
    return json.dumps(data, default=_iso, ensure_ascii=False, indent=2)


def tally_csv(report: TallyReport) -> str:
    """One table: section, label, value, note; a suppressed cell has an empty value and says why."""
    out = io.StringIO()
    writer = csv_writer(out)

    def row(cells: list[Any]) -> None:
        writer.writerow([inert(cell) if isinstance(cell, str) else cell for cell in cells])

    row(["section", "label", "value", "note"])
    row(["petition", "id", report.petition_id, report.title])
    row(["petition", "version", report.version, f"text SHA-256 {report.content_hash}"])
    row(["petition", "state", report.state, ""])
    row(["tally", "signatures", report.signature_count, f"as of {report.generated_at.isoformat()}"])
    for visibility, count in report.by_visibility.items():
        row(["tally", f"visibility: {visibility}", count, ""])
    row(["tally", "withdrawals", report.withdrawal_count, "signatures withdrawn by their signers"])
    row(["tally", "voided", report.voided_count, "signatures voided by the moderators"])
    for threshold in report.thresholds:
        row(
            [
                "threshold",
                threshold.kind,
                threshold.signatures,
                f"reached {threshold.reached_at.isoformat()}" if threshold.reached_at else "not reached",
            ]
        )
    for day, count in report.by_day:
        row(["by day", day.isoformat(), count, ""])
    for breakdown in (report.departments, report.locations):
        if breakdown is None:
            continue
        for cell in breakdown.cells:
            row(
                [
                    f"by {breakdown.kind}",
                    cell.label,
                    "" if cell.count is None else cell.count,
                    suppressed_note(report.min_group_size) if cell.count is None else "",
                ]
            )
    return out.getvalue()


def tally_xlsx(report: TallyReport) -> bytes:
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, SAFE_WORKBOOK | {"in_memory": True})
    bold = workbook.add_format({"bold": True})
    summary = workbook.add_worksheet("Tally")
    rows: list[tuple[str, Any]] = [
        ("Petition", f"#{report.petition_id} {report.title}"),
        ("State", report.state),
        ("Text version", report.version),
        ("Text SHA-256", report.content_hash),
        ("Generated (UTC)", report.generated_at.isoformat()),
        ("Signatures", report.signature_count),
        *((f"Visibility: {visibility}", count) for visibility, count in report.by_visibility.items()),
        ("Withdrawals", report.withdrawal_count),
        ("Voided", report.voided_count),
        *(
            (
                f"Threshold ({threshold.kind}): {threshold.signatures}",
                threshold.reached_at.isoformat() if threshold.reached_at else "not reached",
            )
            for threshold in report.thresholds
        ),
    ]
    for index, (label, value) in enumerate(rows):
        summary.write_string(index, 0, label, bold)
        summary.write(index, 1, value)
    summary.set_column(0, 0, 28)
    summary.set_column(1, 1, 70)
    by_day = workbook.add_worksheet("By day")
    by_day.write_row(0, 0, ["Day", "Signatures"], bold)
    for index, (day, count) in enumerate(report.by_day, start=1):
        by_day.write_string(index, 0, day.isoformat())
        by_day.write_number(index, 1, count)
    for breakdown in (report.departments, report.locations):
        if breakdown is None:
            continue
        sheet = workbook.add_worksheet(f"By {breakdown.kind}")
        sheet.write_row(0, 0, [breakdown.kind.capitalize(), "Signatures"], bold)
        for index, cell in enumerate(breakdown.cells, start=1):
            sheet.write_string(index, 0, cell.label)
            if cell.count is None:
                sheet.write_string(index, 1, suppressed_note(report.min_group_size))
            else:
                sheet.write_number(index, 1, cell.count)
        sheet.set_column(0, 0, 32)
    workbook.close()
    return out.getvalue()


def tally_pdf(report: TallyReport, *, organization: str) -> bytes:
    from app.reports import pdf  # fpdf2 loads only when a PDF is asked for

    return pdf.tally_pdf(report, organization=organization)


# -- signer lists ---------------------------------------------------------------------------------------------

# A signer as the lists write it: name, visibility, signed on (ISO date), department, location ("" when none).
Line = tuple[str, str, str, str, str]


def signer_chunks(*, db: Session, rt: Runtime, petition_id: int, limit: int | None = None) -> Iterator[list[Line]]:
    """Names signers chose to show, newest first, in chunks; never anonymous signers, never voided ones.

    Plain tuples, not objects: a list can hold a million names, and every step per name counts.
    """
    groups = dict(db.execute(select(SignerGroup.id, SignerGroup.name)).all())
    # The table's columns, not the mapped class's: plain rows without the ORM's loading. The hour is read
    # without its per-row UTC conversion (UTCDateTime), which `_day` does once per distinct hour instead.
    table = table_of(Signature)
    statement = (
        select(
            table.c.visibility,
            table.c.public_name,
            table.c.sealed_name,
            type_coerce(table.c.signed_hour, DateTime(timezone=True)),
            table.c.department_id,
            table.c.location_id,
        )
        .where(*shown_names(petition_id))
        .order_by(table.c.signed_hour.desc())  # the (petition_id, signed_hour) index gives this order
        .execution_options(yield_per=CHUNK_ROWS)
    )  # a server-side cursor on PostgreSQL
    if limit is not None:
        statement = statement.limit(limit)
    open_name = rt.sealer.opener(context=name_context(petition_id))
    days: dict[Any, str] = {}  # many signatures share an hour: each is converted once
    public = Visibility.public.value
    # On the session's connection, not through the session: rows as the driver gives them, no ORM loading.
    for partition in db.connection().execute(statement).partitions():
        lines = []
        for visibility, public_name, sealed_name, signed_hour, department_id, location_id in partition:
            day = days.get(signed_hour)
            if day is None:
                day = days[signed_hour] = _day(signed_hour)
            lines.append(
                (
                    public_name if visibility == public else open_name(sealed_name),
                    visibility,
                    day,
                    groups.get(department_id, ""),
                    groups.get(location_id, ""),
                )
            )
        yield lines


def _day(raw: Any) -> str:
    """The UTC day of a stored hour as the driver returns it (aware on PostgreSQL, naive UTC on SQLite)."""
    moment = UTCDateTime().process_result_value(raw if isinstance(raw, datetime) else datetime.fromisoformat(raw), None)  # type: ignore[arg-type]
    return moment.date().isoformat() if moment else ""


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A formula start at the beginning of the text or after anything a spreadsheet may split cells or rows on
# (comma, semicolon, tab, bar, line break), spaces between allowed: "Zoe;=1+1;x" opened in a spreadsheet that
# splits on semicolons has "=1+1" as a cell of its own.
_FORMULA_AFTER_SEPARATOR = re.compile(r"(?:^|(?<=[,;\t|\r\n]))([ \u00a0]*)(?=[=+\-@\t\r])")


def inert(value: str) -> str:
    """A text cell a spreadsheet will not run: each place a formula could start gets an apostrophe.

    Names are typed by signers, and a CSV opened in a spreadsheet turns "=HYPERLINK(...)" into a live formula
    on the organizer's machine (OWASP's "CSV injection"). Every character is kept; "Zoe;=1+1;x" is written
    "Zoe;'=1+1;x"."""
    return _FORMULA_AFTER_SEPARATOR.sub(r"\1'", value)


def csv_writer(out: io.StringIO) -> Any:
    """A CSV writer that quotes every text cell (numbers stay bare), so a separator inside a name stays inside
    it; text cells still go through `inert`."""
    return csv.writer(out, quoting=csv.QUOTE_NONNUMERIC)


def signers_csv(chunks: Iterable[list[Line]]) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(SIGNER_COLUMNS)
    for lines in chunks:
        writer.writerows(
            (inert(name), visibility, day, inert(department), inert(location))
            for name, visibility, day, department, location in lines
        )
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
    yield out.getvalue().encode()


def signers_json(chunks: Iterable[list[Line]]) -> Iterator[bytes]:
    """A JSON array written as it goes: `[` with the first chunk of objects, the next chunks, `]`."""
    first = True
    for lines in chunks:
        if not lines:
            continue
        # One object per signer, written from a template: ten times faster than json.dumps on dicts, which a
        # million-name list notices. Names and group names are escaped as JSON strings (encode_basestring is
        # what json.dumps uses with ensure_ascii=False); visibility and the ISO day are known-safe values.
        escape = encode_basestring
        text = ",".join(
            f'{{"name":{escape(name)},"visibility":"{visibility}","signed_on":"{day}",'
            f'"department":{escape(department)},"location":{escape(location)}}}'
            for name, visibility, day, department, location in lines
        )
        yield (("[" if first else ",") + text).encode()
        first = False
    yield b"[]" if first else b"]"


def signers_xlsx(chunks: Iterable[list[Line]]) -> Iterator[bytes]:
    """XLSX rows are written to a temporary file one at a time (constant memory), then read back in blocks."""
    with tempfile.TemporaryFile() as spool:
        workbook = xlsxwriter.Workbook(spool, SAFE_WORKBOOK | {"constant_memory": True})
        sheet = workbook.add_worksheet("Signers")
        sheet.write_row(0, 0, SIGNER_COLUMNS, workbook.add_format({"bold": True}))
        index = 0
        for lines in chunks:
            for line in lines:
                index += 1
                sheet.write_row(index, 0, line)
        workbook.close()
        spool.seek(0)
        while block := spool.read(1 << 16):
            yield block


def signers_pdf(
    chunks: Iterable[list[Line]], *, title: str, petition_id: int, generated_at: datetime, organization: str, total: int
) -> Iterator[bytes]:
    from app.reports import pdf

    rows = (
        SignerRow(
            name=name,
            visibility=visibility,
            signed_on=date.fromisoformat(day),
            department=department or None,
            location=location or None,
        )
        for lines in chunks
        for name, visibility, day, department, location in lines
    )
    yield pdf.signers_pdf(
        title=title,
        petition_id=petition_id,
        generated_at=generated_at,
        rows=rows,
        organization=organization,
        total=total,
    )


def named_count(*, db: Session, petition_id: int) -> int:
    """How many names a signer list holds (before any limit)."""
    return db.scalar(select(func.count()).select_from(Signature).where(*shown_names(petition_id))) or 0
