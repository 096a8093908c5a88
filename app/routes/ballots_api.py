"""JSON API for ballots (issue #25): creating and closing them, reading them, their results and their log, and
answering without cookies.

The answer route (`POST /api/v1/ballots/{id}/answers`) reads no cookie, asks for no CSRF token (the request
carries no authority to forge) and writes no log line (app/core/cookieless.py, app/core/web.py): what authorises
an answer is the ballot's credential in the body.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, status

from app.ballots import answers, audiences, breakdown, editing, schemas
from app.ballots import log as ballot_log
from app.ballots import service as ballots
from app.core import b64url
from app.core.database import SessionDep
from app.core.errors import InvalidInput, NotFound, errors
from app.core.i18n import N_
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import Runtime, RuntimeDep
from app.core.types import Id, Offset
from app.models.anonymous import SignerKey
from app.models.ballots import Ballot, BallotAudience
from app.petitions import service as petitions
from app.reports import ballots as ballot_reports
from app.routes.policy import Anyone, CurrentUser, OptionalUser

router = APIRouter(prefix="/api/v1", tags=["ballots"], route_class=UnitOfWorkRoute)

LEAVES_PAGE = 1000


def _read(db: SessionDep, rt: Runtime, ballot: Ballot) -> schemas.BallotRead:
    signer_key = None
    if ballot.audience == BallotAudience.signers and ballot.petition_id is not None:
        # The public half outlives the petition's close: an anonymous signer's other device finalizes its kept
        # signer reply under it when a ratification opens after the close (no open key lists it any more).
        signer_key = db.get(SignerKey, ballot.petition_id)
    groups = audiences.audience_groups(db=db, ballot=ballot) if ballot.audience == BallotAudience.groups else []
    return schemas.BallotRead.of(ballot, ballots.labels(db=db, ballot=ballot), rt.clock.now(), signer_key, groups)


def _decode(value: str, field: str) -> bytes:
    try:
        return b64url.decode(value)
    except ValueError:
        raise InvalidInput(N_("Please correct the highlighted fields."), fields={field: "Not base64url."}) from None


@router.post(
    "/ballots",
    responses=errors(404, 409),
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.BallotRead,
    summary="Create a ballot: a petition's organizers for their petition, responders and admins for everyone",
)
def create(body: schemas.BallotCreate, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> schemas.BallotRead:
    petition = None
    if body.petition_id is not None:
        petition = petitions.get_readable(db=db, rt=rt, petition_id=body.petition_id, user=user)
    ballot = ballots.create(
        db,
        rt,
        actor=user,
        petition=petition,
        kind=body.kind,
        question=body.question,
        options=body.options,
        max_choices=body.max_choices,
        audience=body.audience,
        opens_at=body.opens_at,
        closes_at=body.closes_at,
        results_live=body.results_live,
        min_answers=body.min_answers,
        note=body.note,
        groups=body.groups,
    )
    return _read(db, rt, ballot)


@router.get("/ballots", response_model=list[schemas.BallotRead], summary="The ballots you may see, newest first")
def list_ballots(
    user: OptionalUser,
    db: SessionDep,
    rt: RuntimeDep,
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=200),
) -> list[schemas.BallotRead]:
    return [
        _read(db, rt, ballot) for ballot in ballots.list_visible(db=db, rt=rt, user=user, offset=offset, limit=limit)
    ]


@router.get(
    "/ballots/{ballot_id}",
    response_model=schemas.BallotRead,
    summary="A ballot: its question, options, state, counters and blind-signing key",
)
def read(ballot_id: Id, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> schemas.BallotRead:
    return _read(db, rt, ballots.get_visible(db=db, rt=rt, ballot_id=ballot_id, user=user))


@router.get(
    "/ballots/{ballot_id}/results",
    response_model=schemas.BallotResultsRead,
    summary="A ballot's result: hidden until it closes (unless live), nothing below its minimum of answers; by "
    "department or location, for a ballot put to several, once it closes, with small cells suppressed",
)
def results(ballot_id: Id, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> schemas.BallotResultsRead:
    ballot = ballots.get_visible(db=db, rt=rt, ballot_id=ballot_id, user=user)
    read = schemas.BallotResultsRead.of(ballot, ballots.results(db, rt, ballot))
    # The same suppressed cells as the page and the downloads (app/reports/ballots.py decides them all).
    found = ballot_reports.breakdown_of(breakdown.group_counts(db, rt, ballot), ballot.min_answers)
    if found is not None:
        read.breakdown = schemas.BallotBreakdownRead.model_validate(ballot_reports.breakdown_json(found))
    return read


@router.get(
    "/ballots/{ballot_id}/log/leaves",
    response_model=schemas.BallotLeavesRead,
    summary="The ballot log's leaves [start, end), up to the latest checkpoint (canonical JSON, base64url); the "
    "answers only once the result is shown (before: the ballot's own entries)",
)
def leaves(
    ballot_id: Id,
    user: OptionalUser,
    db: SessionDep,
    rt: RuntimeDep,
    start: int = Query(0, ge=0, le=2_147_483_647),
    end: int | None = Query(None, ge=0, le=2_147_483_647, description="Exclusive; at most 1000 leaves a page."),
) -> schemas.BallotLeavesRead:
    ballot = ballots.get_visible(db=db, rt=rt, ballot_id=ballot_id, user=user)
    latest = ballot_log.latest_checkpoint(db=db, ballot_id=ballot.id)
    stop = min(end if end is not None else start + LEAVES_PAGE, start + LEAVES_PAGE)
    shown = ballots.result_shown(ballot, rt)
    rows = ballot_log.leaves(db=db, ballot_id=ballot.id, start=start, end=stop, answers_shown=shown)
    size = latest.size if latest is not None else 0
    return schemas.BallotLeavesRead(
        size=size,
        published=size if shown else min(size, ballot_log.ballot_entries(db, ballot.id)),
        leaves=[schemas.BallotLeafRead(index=row.index, entry=b64url.encode(row.entry)) for row in rows],
    )


@router.get(
    "/ballots/{ballot_id}/log/checkpoint",
    response_model=schemas.BallotCheckpointRead,
    summary="The ballot log's latest signed checkpoint, committing the credentials issued and answers counted",
)
def checkpoint(ballot_id: Id, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> schemas.BallotCheckpointRead:
    ballot = ballots.get_visible(db=db, rt=rt, ballot_id=ballot_id, user=user)
    latest = ballot_log.latest_checkpoint(db=db, ballot_id=ballot.id)
    if latest is None:
        raise NotFound(N_("This poll's log has no checkpoint yet."))
    return schemas.BallotCheckpointRead(
        checkpoint=latest.note, size=latest.size, log_key=ballot_log.verifier_key(rt, ballot.id)
    )


@router.post(
    "/ballots/{ballot_id}/answers",
    responses=errors(409),
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.BallotAnswerAccepted,
    summary="Answer with the ballot's credential: send without cookies; a later answer replaces an earlier one",
)
def answer(
    ballot_id: Id, body: schemas.BallotAnswerCreate, anyone: Anyone, db: SessionDep, rt: RuntimeDep
) -> schemas.BallotAnswerAccepted:
    waits = answers.submit(
        db=db,
        rt=rt,
        ballot_id=ballot_id,
        message=_decode(body.message, "message"),
        signature=_decode(body.signature, "signature"),
        choice=body.choice,
        group=body.group,
    )
    return schemas.BallotAnswerAccepted(accepted=True, counted_at_batch=waits)


@router.patch(
    "/ballots/{ballot_id}",
    responses=errors(403, 404, 409),
    response_model=schemas.BallotRead,
    summary="Change a ballot (who may close it may): before it opens, any field sent; once open, its note and "
    "closing time only",
)
def update(
    ballot_id: Id, body: schemas.BallotUpdate, user: CurrentUser, db: SessionDep, rt: RuntimeDep
) -> schemas.BallotRead:
    ballot = ballots.get_visible(db=db, rt=rt, ballot_id=ballot_id, user=user)
    sent = body.model_fields_set
    change = editing.Change(
        question=body.question,
        options=body.options,
        max_choices=body.max_choices,
        # An opening sent as null is now, as when creating.
        opens_at=body.opens_at if body.opens_at is not None else rt.clock.now() if "opens_at" in sent else None,
        closes_at=body.closes_at,
        results_live=body.results_live,
        min_answers=body.min_answers,
        note=body.note or None,
        clear_note="note" in sent and not body.note,
    )
    return _read(db, rt, editing.apply(db, rt, actor=user, ballot=ballot, change=change))


@router.post(
    "/ballots/{ballot_id}/close",
    responses=errors(409),
    response_model=schemas.BallotRead,
    summary="Close a ballot before its closing time (its organizers; for a pulse ballot, its author or an admin)",
)
def close(ballot_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> schemas.BallotRead:
    ballot = ballots.get_visible(db=db, rt=rt, ballot_id=ballot_id, user=user)
    return _read(db, rt, ballots.close_early(db, rt, actor=user, ballot=ballot))
