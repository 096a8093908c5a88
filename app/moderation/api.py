"""JSON API for moderators."""

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.core.database import SessionDep
from app.core.policy import Moderator
from app.core.runtime import RuntimeDep
from app.moderation import service
from app.petitions import schemas
from app.petitions import service as petitions
from app.petitions.api import detail, summary

router = APIRouter(prefix="/api/v1/moderation", tags=["moderation"])


class Rejection(BaseModel):
    reason: str = Field(max_length=40, description="A code from the list of rejection reasons.")
    note: str | None = Field(default=None, max_length=1000)


class Hiding(BaseModel):
    reason: str = Field(max_length=1000)


@router.get("/queue", response_model=list[schemas.PetitionSummary], summary="Petitions waiting for a decision")
def queue(moderator: Moderator, db: SessionDep) -> list[dict[str, object]]:
    return [summary(petition) for petition in service.queue(db=db)]


@router.post("/petitions/{petition_id}/claim", response_model=schemas.PetitionRead,
             summary="Take the review lock for a few minutes")
def claim(petition_id: int, moderator: Moderator, db: SessionDep, rt: RuntimeDep) -> dict[str, object]:
    petition = petitions.get_or_404(db=db, petition_id=petition_id)
    service.claim(db=db, rt=rt, petition=petition, moderator=moderator)
    return detail(petition, rt)


@router.post("/petitions/{petition_id}/open", response_model=schemas.PetitionRead, summary="Open for signatures")
def approve(petition_id: int, moderator: Moderator, db: SessionDep, rt: RuntimeDep) -> dict[str, object]:
    petition = petitions.get_or_404(db=db, petition_id=petition_id)
    service.approve(db=db, rt=rt, petition=petition, moderator=moderator)
    return detail(petition, rt)


@router.post("/petitions/{petition_id}/reject", response_model=schemas.PetitionRead,
             summary="Reject with a public reason")
def reject(petition_id: int, body: Rejection, moderator: Moderator, db: SessionDep,
           rt: RuntimeDep) -> dict[str, object]:
    petition = petitions.get_or_404(db=db, petition_id=petition_id)
    service.reject(db=db, rt=rt, petition=petition, moderator=moderator, code=body.reason, note=body.note)
    return detail(petition, rt)


@router.post("/petitions/{petition_id}/hide", response_model=schemas.PetitionRead,
             summary="Hide, with a reason that is logged and sent to the organizers")
def hide(petition_id: int, body: Hiding, moderator: Moderator, db: SessionDep, rt: RuntimeDep) -> dict[str, object]:
    petition = petitions.get_or_404(db=db, petition_id=petition_id)
    service.hide(db=db, rt=rt, petition=petition, moderator=moderator, reason=body.reason)
    return detail(petition, rt)


@router.post("/petitions/{petition_id}/restore", response_model=schemas.PetitionRead, summary="Restore a hidden one")
def restore(petition_id: int, moderator: Moderator, db: SessionDep, rt: RuntimeDep) -> dict[str, object]:
    petition = petitions.get_or_404(db=db, petition_id=petition_id)
    service.restore(db=db, rt=rt, petition=petition, moderator=moderator)
    return detail(petition, rt)
