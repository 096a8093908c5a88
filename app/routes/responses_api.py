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


def _read(view: service.ResponseView, today: date) -> dict[str, object]:
    judgement = view.judgement
    return {
        "id": view.response.id,
        "summary": view.response.summary,
        "details_html": view.details_html,
        "status": view.response.status,
        "created_at": view.response.created_at,
        "responder_name": view.responder_name,
        "responder_role": view.response.responder_role,
        "commitments": [
            {
                "id": c.id,
                "text": c.text,
                "owner": c.owner,
                "due_on": c.due_on,
                "status": c.status,
                "overdue": service.is_overdue(c, today),
            }
            for c in view.commitments
        ],
        "judgement": None
        if judgement is None
        else {
            "answers": judgement.answers,
            "reason": judgement.reason,
            "follow_up_requested": judgement.follow_up_requested,
            "updated_at": judgement.updated_at,
        },
    }


@router.get(
    "/petitions/{petition_id}/responses",
    response_model=list[schemas.ResponseRead],
    summary="Leadership's responses, with commitments and the organizers' judgement",
)
def list_responses(
    petition_id: Id, user: OptionalUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep
) -> list[dict[str, object]]:
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
) -> dict[str, object]:
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
) -> dict[str, object]:
    commitment = service.get_commitment(db=db, commitment_id=commitment_id)
    service.update_commitment(db=db, rt=rt, commitment=commitment, responder=responder, form=body)
    return {
        "id": commitment.id,
        "text": commitment.text,
        "owner": commitment.owner,
        "due_on": commitment.due_on,
        "status": commitment.status,
        "overdue": service.is_overdue(commitment, rt.clock.now().date()),
    }


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
def due(responder: Responder, db: SessionDep, rt: RuntimeDep) -> list[dict[str, object]]:
    now: datetime = rt.clock.now()
    return [
        {
            "petition_id": item.petition.id,
            "title": item.petition.title,
            "signature_count": item.petition.signature_count,
            "response_due_at": item.petition.response_due_at,
            "overdue": item.overdue,
            "follow_up_requested": item.follow_up_requested,
        }
        for item in service.awaiting_response(db=db, now=now)
    ]
