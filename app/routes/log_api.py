"""JSON API of the signature logs: everything `undersigned verify` and witnesses need, and nothing per reader.

Binary values (hashes, entries, keys) travel as base64url without padding, as in the anonymous-signing API
(app/anonymous/schemas.py says why). Checkpoints, signature lines and verifier keys are C2SP text, a format of its
own, and keep the standard base64 their specifications write (so `root` here and the root line of `checkpoint`
spell the same hash in two alphabets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.anonymous import anonymity
from app.core import b64url
from app.core.database import PublicSessionDep, PublicSessionmakerDep, SessionDep, SessionmakerDep
from app.core.errors import InvalidInput, NotFound, errors
from app.core.i18n import N_, Message
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import Runtime, RuntimeDep
from app.core.types import Id
from app.log import service, tiles, tree
from app.log.schemas import (
    CheckpointsRead,
    ConsistencyRead,
    CosignatureCreate,
    CosignatureRead,
    EntriesRead,
    InclusionRead,
    LogRead,
)
from app.models.accounts import User
from app.models.lifecycle import LISTED_STATES
from app.models.log import LogCheckpoint, LogHead
from app.models.petitions import Petition
from app.petitions import issuing_keys
from app.petitions import service as petitions
from app.routes.policy import Anyone, OptionalUser

_T = TypeVar("_T")
router = APIRouter(prefix="/api/v1/petitions/{petition_id}/log", tags=["signature log"], route_class=UnitOfWorkRoute)

PAGE = 1000
# Entries and proofs for a given size never change; the head does, at each batch.
FOREVER = {"Cache-Control": "public, max-age=31536000, immutable"}
A_MINUTE = {"Cache-Control": "public, max-age=60"}
# A petition not listed (hidden, withheld) shows its log to its organizers and moderators alone: a shared cache
# (a CDN, a proxy) must not keep their copy and hand it to anyone, as the answer carries no cookie to mark it.
NOT_SHARED = {"Cache-Control": "private, no-store", "Vary": "Cookie"}


_b64 = b64url.encode


def _cached(petition: Petition, headers: dict[str, str]) -> dict[str, str]:
    """`headers` for a listed petition's log; for any other, kept by no cache."""
    return headers if petition.state in LISTED_STATES else NOT_SHARED


def _log_of(db: Session, data: Session, rt: Runtime, petition_id: int, user: User | None) -> tuple[Petition, LogHead]:
    """The petition and its log head. Who may read the log is decided on the primary (`db`): a replica that lags
    would still serve a petition just hidden. The head, and what the route reads after it, come from `data`
    (the replica, when there is one); a log the replica has not seen yet is not found."""
    petition = petitions.get_readable(db=db, rt=rt, petition_id=petition_id, user=user)
    head = tree.head(data, petition.id)
    if head is None:
        raise NotFound(N_("This petition has no signature log yet: it starts when the petition opens."))
    return petition, head


@router.get("", response_model=LogRead, summary="The log's head: latest checkpoint, log key, issuing key")
def log_head(
    petition_id: Id, user: OptionalUser, primary: SessionDep, db: PublicSessionDep, rt: RuntimeDep
) -> JSONResponse:
    petition, head = _log_of(primary, db, rt, petition_id, user)
    latest = service.latest_checkpoint(db=db, petition_id=petition.id)
    assert latest is not None  # every append ends with one
    key = issuing_keys.published(db=db, petition_id=petition.id)
    issued = None if key is None else anonymity.issued(key, head)  # what the log commits, not the live counters
    body = LogRead(
        origin=service.origin(rt, petition.id),
        log_key=service.log_verifier_key(rt, petition.id),
        size=latest.size,
        root=_b64(latest.root),
        checkpoint=service.with_cosignatures(db, latest),
        witnesses=[row.witness for row in service.cosigners(db=db, petition_id=petition.id, size=latest.size)],
        witness_keys=list(rt.settings.log_witnesses),
        issuing_key=None
        if key is None or issued is None
        else {
            "key_id": key.key_id,
            "spki": _b64(key.spki),
            "tokens_issued": issued.tokens_issued,
            "spent_by_name": issued.spent_by_name,
            "forfeited": key.forfeited,
            "anonymous_signatures": key.anonymous_signatures,
            "destroyed_at": key.destroyed_at.isoformat() if key.destroyed_at else None,
        },
        counts=service.counts_of(db, latest),
        waiting=service.waiting(db=db, petition_id=petition.id),
    )
    return JSONResponse(body.model_dump(), headers=_cached(petition, A_MINUTE))


@router.get(
    "/entries", response_model=EntriesRead, summary="Entries by index range (their canonical JSON bytes, base64url)"
)
def entries(
    petition_id: Id,
    user: OptionalUser,
    primary: SessionDep,
    db: PublicSessionDep,
    rt: RuntimeDep,
    start: int = Query(0, ge=0, le=2**31 - 1),
    limit: int = Query(PAGE, ge=1, le=PAGE),
) -> JSONResponse:
    petition, _head = _log_of(primary, db, rt, petition_id, user)
    # Only what the latest checkpoint covers: a leaf appended without one is not part of the signed log.
    latest = service.latest_checkpoint(db=db, petition_id=petition.id)
    size = latest.size if latest is not None else 0
    rows = db.execute(tree.select_leaves(petition.id, start, min(size, start + limit))).all()
    complete = start + limit <= size
    return JSONResponse(
        {"size": size, "entries": [{"index": index, "entry": _b64(entry)} for index, entry in rows]},
        headers=_cached(petition, FOREVER if complete else A_MINUTE),
    )


@router.get(
    "/checkpoints", response_model=CheckpointsRead, summary="Checkpoints after a size, oldest first (signed notes)"
)
def checkpoints(
    petition_id: Id,
    user: OptionalUser,
    primary: SessionDep,
    db: PublicSessionDep,
    rt: RuntimeDep,
    after: int = Query(0, ge=0, le=2**31 - 1),
    limit: int = Query(100, ge=1, le=1000),
) -> JSONResponse:
    petition, _head = _log_of(primary, db, rt, petition_id, user)
    rows = service.checkpoints(db=db, petition_id=petition.id, after_size=after, limit=limit)
    return JSONResponse({"checkpoints": service.notes_with_cosignatures(db, rows)}, headers=_cached(petition, A_MINUTE))


def _public_size(db: Session, petition_id: int) -> int:
    """The size of a public petition's latest checkpoint, or a 404: proofs are read by anyone, often, and only
    trees a checkpoint signed are proven."""
    size = db.execute(
        select(func.max(LogCheckpoint.size))
        .join(Petition, Petition.id == LogCheckpoint.petition_id)
        .where(LogCheckpoint.petition_id == petition_id, Petition.state.in_([s.value for s in LISTED_STATES]))
    ).scalar_one_or_none()
    if size is None:
        raise NotFound(N_("This petition has no public signature log: it starts when the petition opens."))
    return size


def _require_listed(db: Session, petition_id: int) -> None:
    state = db.scalar(select(Petition.state).where(Petition.id == petition_id))
    if state is None or state not in LISTED_STATES:
        raise NotFound(N_("This petition has no public signature log: it starts when the petition opens."))


async def _read(
    sessions: sessionmaker[Session], work: Callable[[Session], _T], *, primary: sessionmaker[Session], petition_id: int
) -> _T:
    """Run a read in one worker-thread hop, in a session of its own: proofs are the log's hottest requests,
    and they need neither the viewer's session nor a unit of work. On a read replica, whether the petition is
    public is still the primary's to say (one lookup by key): a replica that lags would serve a petition just
    hidden."""

    def run() -> _T:
        if sessions is not primary:
            with primary() as db:
                _require_listed(db, petition_id)
        with sessions() as db:
            return work(db)

    return await anyio.to_thread.run_sync(run)


def _size(head_size: int, size: int) -> int:
    if size > head_size:
        raise InvalidInput(
            N_("The log is not that large yet."), fields={"size": Message(N_("At most %(size)s."), size=head_size)}
        )
    return size


@router.get(
    "/inclusion",
    response_model=InclusionRead,
    summary="Inclusion proof of a leaf in the tree of a given size (RFC 9162)",
)
async def inclusion(
    petition_id: Id,
    anyone: Anyone,
    sessions: PublicSessionmakerDep,
    primary: SessionmakerDep,
    index: int = Query(ge=0, le=2**31 - 1),
    size: int = Query(ge=1, le=2**31 - 1),
) -> JSONResponse:
    def work(db: Session) -> list[bytes]:
        bounded = _size(_public_size(db, petition_id), size)
        if index >= bounded:
            raise InvalidInput(
                N_("That leaf is not in a tree of that size."),
                fields={"index": Message(N_("Below %(size)s."), size=bounded)},
            )
        return tree.inclusion_proof(db, petition_id, index, bounded)

    proof = await _read(sessions, work, primary=primary, petition_id=petition_id)
    return JSONResponse({"index": index, "size": size, "proof": [_b64(node) for node in proof]}, headers=FOREVER)


@router.get(
    "/consistency", response_model=ConsistencyRead, summary="Consistency proof between two tree sizes (RFC 9162)"
)
async def consistency(
    petition_id: Id,
    anyone: Anyone,
    sessions: PublicSessionmakerDep,
    primary: SessionmakerDep,
    old: int = Query(ge=1, le=2**31 - 1),
    new: int = Query(ge=1, le=2**31 - 1),
) -> JSONResponse:
    def work(db: Session) -> list[bytes]:
        bounded = _size(_public_size(db, petition_id), new)
        if old > bounded:
            raise InvalidInput(
                N_("The old size must not exceed the new one."),
                fields={"old": Message(N_("At most %(size)s."), size=bounded)},
            )
        return tree.consistency_proof(db, petition_id, old, bounded)

    proof = await _read(sessions, work, primary=primary, petition_id=petition_id)
    return JSONResponse({"old": old, "new": new, "proof": [_b64(node) for node in proof]}, headers=FOREVER)


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    responses=errors(404),
    summary="The latest checkpoint with its cosignatures, as C2SP tlog-tiles serves it (text)",
)
async def tiles_checkpoint(
    petition_id: Id, anyone: Anyone, sessions: PublicSessionmakerDep, primary: SessionmakerDep
) -> PlainTextResponse:
    def work(db: Session) -> str:
        size = _public_size(db, petition_id)
        latest = service.latest_checkpoint(db=db, petition_id=petition_id)
        assert latest is not None and latest.size == size
        return service.with_cosignatures(db, latest)

    note = await _read(sessions, work, primary=primary, petition_id=petition_id)
    # The spec asks for no caching beyond a few seconds: a mirror must not hold an old head.
    return PlainTextResponse(
        note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "public, max-age=5"}
    )


@router.get(
    "/tile/{tile_path:path}",
    response_class=Response,
    responses=errors(404),
    summary="A C2SP tlog-tiles hash tile (<L>/<N>[.p/<W>]) or entry bundle (entries/<N>[.p/<W>])",
)
async def tile(
    petition_id: Id, tile_path: str, anyone: Anyone, sessions: PublicSessionmakerDep, primary: SessionmakerDep
) -> Response:
    try:
        level, index, width = tiles.parse(tile_path)
    except tiles.NotATile:
        raise NotFound(N_("There is no such tile.")) from None

    def work(db: Session) -> bytes:
        size = _public_size(db, petition_id)
        if level is None:
            return tiles.read_bundle(db, petition_id, size, index, width)
        return tiles.read_tile(db, petition_id, size, level, index, width)

    try:
        body = await _read(sessions, work, primary=primary, petition_id=petition_id)
    except tiles.NotATile:
        raise NotFound(N_("There is no such tile: the latest checkpoint does not cover it.")) from None
    return Response(body, media_type="application/octet-stream", headers=FOREVER)


@router.post(
    "/cosignatures",
    status_code=status.HTTP_201_CREATED,
    response_model=CosignatureRead,
    summary="A witness's cosignature of a checkpoint (only the deployment's configured witnesses)",
)
def cosign(
    petition_id: Id, body: CosignatureCreate, user: OptionalUser, db: SessionDep, rt: RuntimeDep
) -> CosignatureRead:
    petition, _head = _log_of(db, db, rt, petition_id, user)
    row = service.cosign(db=db, rt=rt, petition_id=petition.id, size=body.size, line=body.line)
    return CosignatureRead.of(row)
