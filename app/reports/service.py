"""Exports as the routes and the command line use them: the file, and the audit record of who took it."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.to_thread
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit import service as audit
from app.core.errors import InvalidInput, Unavailable
from app.core.i18n import N_
from app.core.routing import AfterCommit
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.audit import AuditEntry
from app.models.petitions import Petition
from app.reports import exports, tally
from app.reports.model import ExportRecord

EXPORT_ACTION = "petition.export"
KINDS = ("tally", "signers")


def _subject(petition_id: int) -> str:
    return f"petition:{petition_id}"


def check_choice(*, kind: str, fmt: str) -> None:
    fields = {}
    if kind not in KINDS:
        fields["kind"] = "Choose the tally or the list of names."
    if fmt not in exports.FORMATS:
        fields["format"] = "Choose CSV, JSON, XLSX or PDF."
    if fields:
        raise InvalidInput(N_("Please correct the highlighted fields."), fields=fields)


def record_export(
    *, db: Session, rt: Runtime, actor: User | None, petition: Petition, kind: str, fmt: str, via: str
) -> None:
    """Audit an export in the caller's transaction, before a byte of it leaves."""
    audit.record(
        db=db,
        rt=rt,
        actor=actor,
        action=EXPORT_ACTION,
        subject=_subject(petition.id),
        detail={"petition_id": petition.id, "kind": kind, "format": fmt, "via": via},
    )


def audited_export(
    *,
    db: Session,
    sessions: sessionmaker[Session],
    rt: Runtime,
    actor: User,
    petition: Petition,
    kind: str,
    fmt: str,
    via: str,
) -> AfterCommit:
    """An export as the page and the API give it: recorded in the request's unit of work, and built from a read
    session of its own once that unit of work is committed (app/core/routing.py, `AfterCommit`).

    The record stands before anything is read for the file, and the locks that writing it took (the audit
    log's head row; SQLite's write lock) are released before a possibly long build.
    """
    record_export(db=db, rt=rt, actor=actor, petition=petition, kind=kind, fmt=fmt, via=via)
    headers = {
        "Content-Disposition": f'attachment; filename="{exports.filename(petition_id=petition.id, kind=kind, fmt=fmt)}"'
    }

    def build() -> Response:
        if kind == "tally":
            with sessions() as read:
                content = tally_file(db=read, rt=rt, petition=petition, fmt=fmt)
            return Response(content, media_type=exports.MEDIA_TYPES[fmt], headers=headers)
        return StreamingResponse(
            stream_signers(sessions=sessions, rt=rt, petition=petition, fmt=fmt),
            media_type=exports.MEDIA_TYPES[fmt],
            headers=headers,
        )

    return AfterCommit(build)


def history(*, db: Session, petition_id: int, limit: int = 200) -> list[ExportRecord]:
    records = []
    for at, actor_name, detail in db.execute(
        select(AuditEntry.at, AuditEntry.actor_name, AuditEntry.detail)
        .where(AuditEntry.action == EXPORT_ACTION, AuditEntry.subject == _subject(petition_id))
        .order_by(AuditEntry.seq.desc())
        .limit(limit)
    ):
        values = json.loads(detail)
        records.append(ExportRecord(at=at, actor_name=actor_name, kind=values["kind"], format=values["format"]))
    return records


def tally_file(*, db: Session, rt: Runtime, petition: Petition, fmt: str, public: bool = False) -> bytes:
    report = tally.build(db=db, rt=rt, petition=petition, public=public)
    if fmt == "csv":
        return exports.tally_csv(report).encode()
    if fmt == "json":
        return exports.tally_json(report).encode()
    if fmt == "xlsx":
        return exports.tally_xlsx(report)
    return exports.tally_pdf(report, organization=rt.settings.organization_name)


def signer_file(
    *, db: Session, rt: Runtime, petition: Petition, fmt: str, on_rows: Callable[[int], object] | None = None
) -> Iterator[bytes]:
    """The signer list in `fmt`, produced chunk by chunk from `db` (which must stay open while it runs);
    `on_rows` hears how many names each chunk read (for a progress bar)."""
    limit = exports.PDF_SIGNER_LIMIT if fmt == "pdf" else None
    chunks = exports.signer_chunks(db=db, rt=rt, petition_id=petition.id, limit=limit)
    if on_rows is not None:
        chunks = _counted(chunks, on_rows)
    if fmt == "pdf":
        return exports.signers_pdf(
            chunks,
            title=petition.title,
            petition_id=petition.id,
            generated_at=rt.clock.now(),
            organization=rt.settings.organization_name,
            total=exports.named_count(db=db, petition_id=petition.id),
        )
    writer: Callable[[Any], Iterator[bytes]] = {
        "csv": exports.signers_csv,
        "json": exports.signers_json,
        "xlsx": exports.signers_xlsx,
    }[fmt]
    return writer(chunks)


def _counted(chunks: Iterator[list[exports.Line]], on_rows: Callable[[int], object]) -> Iterator[list[exports.Line]]:
    for rows in chunks:
        on_rows(len(rows))
        yield rows


_DONE = object()


# Streamed exports at once per server process: each holds a connection (and a read transaction) for as long as
# its client takes to download, so a few slow downloads must not take every connection of the pool.
STREAM_SLOTS = 2
_streams = threading.BoundedSemaphore(STREAM_SLOTS)


def stream_signers(
    *, sessions: sessionmaker[Session], rt: Runtime, petition: Petition, fmt: str
) -> AsyncIterator[bytes]:
    """A signer list streamed from a read session of its own, after the request's unit of work has ended.

    The first chunk is produced here, before any response is sent, so that a failure (the database gone, a
    name that cannot be decrypted) is an error page, not a truncated file; a PDF or an XLSX file is all first
    chunk. The rest is produced in worker threads under a limiter of its own: the stream holds a connection
    between chunks, so it must never wait for the shared worker threads (see app/core/routing.py).
    """
    if not _streams.acquire(blocking=False):
        raise Unavailable(
            N_("Other exports are running on this server. Please try again in a minute."), headers={"Retry-After": "60"}
        )
    db = sessions()
    produced: Iterator[bytes] = iter(())
    try:
        produced = signer_file(db=db, rt=rt, petition=petition, fmt=fmt)
        first = next(produced, b"")
    except BaseException:
        _close(produced, db)
        raise
    return _rest(first, produced, db)


async def _rest(first: bytes, produced: Iterator[bytes], db: Session) -> AsyncIterator[bytes]:
    limiter = anyio.CapacityLimiter(1)
    try:
        yield first
        while (chunk := await anyio.to_thread.run_sync(next, produced, _DONE, limiter=limiter)) is not _DONE:
            yield chunk  # type: ignore[misc]
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_close, produced, db, limiter=limiter)


def _close(produced: Iterator[bytes], db: Session) -> None:
    try:
        close = getattr(produced, "close", None)
        if close is not None:
            close()
    finally:
        db.close()
        _streams.release()
