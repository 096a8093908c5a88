"""JSON API for moderators."""

from fastapi import APIRouter

from app.core.database import SessionDep
from app.core.errors import errors
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.types import Id
from app.moderation import service
from app.moderation.schemas import (
    Hiding,
    InvalidationPreview,
    InvalidationRead,
    InvalidationRequest,
    InvalidationRule,
    Rejection,
)
from app.petitions import schemas
from app.routes.petitions_api import detail, summary
from app.routes.policy import ModeratedPetition, Moderator
from app.signatures import integrity

router = APIRouter(prefix="/api/v1/moderation", tags=["moderation"], route_class=UnitOfWorkRoute)


@router.get("/queue", response_model=list[schemas.PetitionSummary], summary="Petitions waiting for a decision")
def queue(moderator: Moderator, db: SessionDep) -> list[schemas.PetitionSummary]:
    return [summary(petition) for petition in service.queue(db=db)]


@router.post(
    "/petitions/{petition_id}/claim",
    responses=errors(409),
    response_model=schemas.PetitionRead,
    summary="Take the review lock for a few minutes",
)
def claim(
    petition_id: Id, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> schemas.PetitionRead:
    service.claim(db=db, rt=rt, petition=petition, moderator=moderator)
    return detail(petition, rt, db)


@router.post(
    "/petitions/{petition_id}/open",
    responses=errors(409),
    response_model=schemas.PetitionRead,
    summary="Open for signatures",
)
def approve(
    petition_id: Id, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> schemas.PetitionRead:
    service.approve(db=db, rt=rt, petition=petition, moderator=moderator)
    return detail(petition, rt, db)


@router.post(
    "/petitions/{petition_id}/reject",
    responses=errors(409),
    response_model=schemas.PetitionRead,
    summary="Reject with a public reason",
)
def reject(
    petition_id: Id, body: Rejection, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> schemas.PetitionRead:
    service.reject(db=db, rt=rt, petition=petition, moderator=moderator, code=body.reason, note=body.note)
    return detail(petition, rt, db)


@router.post(
    "/petitions/{petition_id}/hide",
    responses=errors(409),
    response_model=schemas.PetitionRead,
    summary="Hide, with a reason that is logged and sent to the organizers",
)
def hide(
    petition_id: Id, body: Hiding, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> schemas.PetitionRead:
    service.hide(db=db, rt=rt, petition=petition, moderator=moderator, reason=body.reason)
    return detail(petition, rt, db)


@router.post(
    "/petitions/{petition_id}/restore",
    responses=errors(409),
    response_model=schemas.PetitionRead,
    summary="Restore a hidden one",
)
def restore(
    petition_id: Id, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> schemas.PetitionRead:
    service.restore(db=db, rt=rt, petition=petition, moderator=moderator)
    return detail(petition, rt, db)


@router.post(
    "/petitions/{petition_id}/invalidations/preview",
    response_model=InvalidationPreview,
    summary="How many counted signatures a rule would void",
)
def preview_invalidation(
    petition_id: Id,
    body: InvalidationRule,
    moderator: Moderator,
    petition: ModeratedPetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> InvalidationPreview:
    """Recorded in the audit log (the rule's size and the count, not the addresses)."""
    matched = integrity.preview(
        db=db, rt=rt, petition=petition, moderator=moderator, entries=integrity.parse_rule(body.rule)
    )
    return InvalidationPreview(matched=matched)


@router.post(
    "/petitions/{petition_id}/invalidations",
    responses=errors(409),
    response_model=InvalidationRead,
    status_code=201,
    summary="Void the signatures a rule matches (kept on record, no longer counted)",
)
def invalidate(
    petition_id: Id,
    body: InvalidationRequest,
    moderator: Moderator,
    petition: ModeratedPetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> object:
    return integrity.invalidate(
        db=db,
        rt=rt,
        petition=petition,
        moderator=moderator,
        entries=integrity.parse_rule(body.rule),
        reason=body.reason,
        expected=body.expected,
    )
