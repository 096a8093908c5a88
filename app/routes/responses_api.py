"""JSON API for leadership's responses."""

from datetime import date, datetime

from fastapi import APIRouter, status

from app.core.database import SessionDep
from app.core.errors import errors
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.types import Id
from app.responses import schemas, service
from app.routes.policy import (
    OptionalUser,
    OrganizedPetition,
    Organizer,
    ReadablePetition,
    RespondablePetition,
    Responder,
)

router = APIRouter(prefix="/api/v1", tags=["responses"], route_class=UnitOfWorkRoute)


def _read(view: service.ResponseView, today: date) -> schemas.ResponseRead:
    return schemas.ResponseRead.of(
        view.response,
        details_html=view.details_html,
        responder_name=view.responder_name,
        commitments=[
            schemas.CommitmentRead.of(commitment, overdue=service.is_overdue(commitment, today))
            for commitment in view.commitments
        ],
        judgement=view.judgement,
    )


@router.get(
    "/petitions/{petition_id}/responses",
    response_model=list[schemas.ResponseRead],
    summary="Leadership's responses, with commitments and the organizers' judgement",
)
def list_responses(
    petition_id: Id, user: OptionalUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep
) -> list[schemas.ResponseRead]:
    today = rt.clock.now().date()
    return [_read(view, today) for view in service.responses(db=db, petition=petition)]


@router.post(
    "/petitions/{petition_id}/responses",
    responses=errors(409),
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.ResponseRead,
    summary="Post an official response (responders)",
)
def post_response(
    petition_id: Id,
    body: schemas.ResponseCreate,
    responder: Responder,
    petition: RespondablePetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> schemas.ResponseRead:
    created = service.post_response(db=db, rt=rt, petition=petition, responder=responder, form=body)
    view = next(v for v in service.responses(db=db, petition=petition) if v.response.id == created.id)
    return _read(view, rt.clock.now().date())


@router.post(
    "/commitments/{commitment_id}/updates",
    response_model=schemas.CommitmentRead,
    summary="Change a commitment's status or add a progress note (responders)",
)
def update_commitment(
    commitment_id: Id, body: schemas.CommitmentChange, responder: Responder, db: SessionDep, rt: RuntimeDep
) -> schemas.CommitmentRead:
    commitment = service.get_commitment(db=db, commitment_id=commitment_id)
    service.update_commitment(db=db, rt=rt, commitment=commitment, responder=responder, form=body)
    return schemas.CommitmentRead.of(commitment, overdue=service.is_overdue(commitment, rt.clock.now().date()))


@router.put(
    "/petitions/{petition_id}/responses/{response_id}/judgement",
    response_model=schemas.JudgementRead,
    summary="Say whether a response answers the petition, and ask for a follow-up (organizers)",
)
def judge(
    petition_id: Id,
    response_id: Id,
    body: schemas.JudgementCreate,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> object:
    response = service.get_response(db=db, petition=petition, response_id=response_id)
    return service.judge(db=db, rt=rt, petition=petition, response=response, organizer=user, form=body)


@router.get(
    "/responders/due",
    response_model=list[schemas.DueRead],
    summary="Petitions awaiting a response, soonest due first (responders)",
)
def due(responder: Responder, db: SessionDep, rt: RuntimeDep) -> list[schemas.DueRead]:
    now: datetime = rt.clock.now()
    return [
        schemas.DueRead.of(item.petition, overdue=item.overdue, follow_up_requested=item.follow_up_requested)
        for item in service.awaiting_response(db=db, now=now)
    ]
