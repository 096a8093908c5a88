"""JSON API for petitions: the same services as the pages."""

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.core.database import SessionDep
from app.core.errors import errors
from app.core.pagecache import shared_when_signed_out
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import Runtime, RuntimeDep
from app.core.types import Id
from app.models.petitions import Petition
from app.organization import service as organization
from app.petitions import repository, schemas, service
from app.routes.policy import (
    CurrentUser,
    OptionalUser,
    OrganizedPetition,
    Organizer,
    ReadablePetition,
    share_when_public,
)

router = APIRouter(prefix="/api/v1", tags=["petitions"], route_class=UnitOfWorkRoute)


def summary(petition: Petition) -> schemas.PetitionSummary:
    return schemas.PetitionSummary.of(petition)


def detail(petition: Petition, rt: Runtime, db: Session) -> schemas.PetitionRead:
    withheld = petition.rejection is not None and not petition.rejection.public
    return schemas.PetitionRead.of(
        petition,
        sponsors_required=organization.current(db=db, rt=rt).sponsors_required,
        rejection=petition.rejection.title if petition.rejection else None,
        rejection_detail=None if withheld or petition.rejection is None else petition.rejection.description,
    )


class SponsorRequest(BaseModel):
    token: str = Field(min_length=1, max_length=64, description="The token from the sponsor link.")


@router.get("/categories", response_model=list[schemas.CategoryRead], summary="Petition categories")
def list_categories(user: OptionalUser, db: SessionDep) -> list[object]:
    return list(service.categories(db=db))


@router.get("/petitions", response_model=schemas.PetitionPage, summary="List and search petitions")
def list_petitions(
    user: OptionalUser,
    db: SessionDep,
    rt: RuntimeDep,
    state: schemas.ListFilter = schemas.ListFilter.open,
    category: str | None = Query(None, max_length=40),
    sort: schemas.ListSort = schemas.ListSort.most_signed,
    q: str | None = Query(None, max_length=200),
    page: int = Query(1, ge=1, le=100_000),
    per_page: int = Query(20, ge=1, le=100),
) -> schemas.PetitionPage:
    service.close_expired(db=db, rt=rt)  # the check on read: nothing past its deadline is listed as open
    listing = repository.list_petitions(
        db=db,
        now=rt.clock.now(),
        state_filter=state,
        category=category,
        sort=sort,
        query=q,
        page=page,
        per_page=per_page,
    )
    return schemas.PetitionPage(
        items=[summary(p) for p in listing.petitions], total=listing.total, page=listing.page, pages=listing.pages
    )


@router.get(
    "/petitions/similar",
    response_model=list[schemas.PetitionSummary],
    summary="Open petitions similar to a title and ask (shown before writing a new one)",
)
def similar(
    user: OptionalUser, db: SessionDep, title: str = Query(max_length=120), ask: str = Query("", max_length=1000)
) -> list[schemas.PetitionSummary]:
    return [summary(p) for p in repository.similar_open(db=db, text=f"{title} {ask}")]


@router.post(
    "/petitions",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.PetitionRead,
    summary="Create a draft petition",
)
def create(body: schemas.PetitionDraft, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> schemas.PetitionRead:
    petition = service.create_draft(db=db, rt=rt, creator=user, form=body)
    return detail(petition, rt, db)


@router.get("/petitions/{petition_id}", response_model=schemas.PetitionRead, summary="One petition")
@shared_when_signed_out
def read(
    request: Request, petition_id: Id, user: OptionalUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep
) -> schemas.PetitionRead:
    share_when_public(request, user=user, petition=petition, db=db, rt=rt)
    return detail(petition, rt, db)


@router.put(
    "/petitions/{petition_id}",
    responses=errors(409),
    response_model=schemas.PetitionRead,
    summary="Edit a draft (organizers)",
)
def edit(
    petition_id: Id,
    body: schemas.PetitionDraft,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> schemas.PetitionRead:
    service.update_draft(db=db, rt=rt, petition=petition, form=body)
    return detail(petition, rt, db)


@router.post(
    "/petitions/{petition_id}/corrections",
    responses=errors(409),
    response_model=schemas.PetitionRead,
    summary="Correct an open petition's text: a new version, signers told (organizers)",
)
def correct(
    petition_id: Id,
    body: schemas.PetitionCorrection,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> schemas.PetitionRead:
    service.correct_text(db=db, rt=rt, petition=petition, actor=user, form=body)
    return detail(petition, rt, db)


@router.post(
    "/petitions/{petition_id}/submit",
    responses=errors(409),
    response_model=schemas.PetitionRead,
    summary="Fix the draft's text and start collecting sponsors (organizers)",
)
def submit(
    petition_id: Id, user: Organizer, petition: OrganizedPetition, db: SessionDep, rt: RuntimeDep
) -> schemas.PetitionRead:
    service.submit_for_sponsors(db=db, rt=rt, petition=petition, actor=user)
    return detail(petition, rt, db)


@router.get(
    "/petitions/{petition_id}/sponsor-link",
    response_model=schemas.SponsorLink,
    summary="The private link to share with would-be sponsors (organizers)",
)
def sponsor_link(
    petition_id: Id, user: Organizer, petition: OrganizedPetition, db: SessionDep, rt: RuntimeDep
) -> schemas.SponsorLink:
    return schemas.SponsorLink(
        url=rt.settings.base_url.rstrip("/") + service.sponsor_url(rt=rt, petition=petition),
        sponsors=petition.sponsor_count,
        sponsors_required=organization.current(db=db, rt=rt).sponsors_required,
    )


@router.post(
    "/petitions/{petition_id}/sponsorships",
    responses=errors(409),
    response_model=schemas.PetitionRead,
    summary="Sponsor a petition with the token from its sponsor link",
)
def sponsor(
    petition_id: Id, body: SponsorRequest, user: CurrentUser, db: SessionDep, rt: RuntimeDep
) -> schemas.PetitionRead:
    petition = service.get_or_404(db=db, petition_id=petition_id)
    service.sponsor(db=db, rt=rt, petition=petition, token=body.token, user=user)
    return detail(petition, rt, db)


@router.get(
    "/petitions/{petition_id}/versions",
    response_model=list[schemas.VersionRead],
    summary="Every published version of the text",
)
def versions(
    petition_id: Id, user: OptionalUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep
) -> list[object]:
    return list(service.versions(db=db, petition=petition))


@router.get("/petitions/{petition_id}/timeline", response_model=list[schemas.EventRead], summary="The public timeline")
def timeline(
    petition_id: Id, user: OptionalUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep
) -> list[object]:
    return list(service.timeline(db=db, petition=petition))


@router.get(
    "/petitions/{petition_id}/updates", response_model=list[schemas.UpdateRead], summary="Updates from the organizers"
)
def list_updates(
    petition_id: Id, user: OptionalUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep
) -> list[object]:
    return list(service.updates(db=db, petition=petition))


@router.post(
    "/petitions/{petition_id}/updates",
    responses=errors(409, 429),
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.UpdateRead,
    summary="Post an update to signers and followers (organizers)",
)
def post_update(
    petition_id: Id,
    body: schemas.UpdateCreate,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> object:
    return service.post_update(db=db, rt=rt, petition=petition, actor=user, form=body)


@router.post(
    "/petitions/{petition_id}/organizers",
    responses=errors(429),
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Invite a co-organizer by work address (the creator): the same answer whether or not the "
    "address has an account; it is mailed an invitation, or how to join first",
)
def add_organizer(
    petition_id: Id,
    body: schemas.OrganizerInvite,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> Response:
    service.invite_organizer(db=db, rt=rt, petition=petition, actor=user, raw_email=body.email)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/petitions/{petition_id}/organizers/{user_id}",
    responses=errors(409),
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a co-organizer (the creator, or oneself)",
)
def remove_organizer(
    petition_id: Id, user_id: Id, user: Organizer, petition: OrganizedPetition, db: SessionDep
) -> Response:
    service.remove_organizer(db=db, petition=petition, actor=user, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/petitions/{petition_id}/close",
    responses=errors(409),
    response_model=schemas.PetitionRead,
    summary="Close the petition now (organizers)",
)
def close(
    petition_id: Id, user: Organizer, petition: OrganizedPetition, db: SessionDep, rt: RuntimeDep
) -> schemas.PetitionRead:
    service.close(db=db, rt=rt, petition=petition, actor=user, reason="The organizers closed it.")
    return detail(petition, rt, db)


@router.put(
    "/petitions/{petition_id}/follow",
    responses=errors(409),
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Follow a petition (idempotent)",
)
def follow(petition_id: Id, user: CurrentUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep) -> Response:
    service.follow(db=db, rt=rt, petition=petition, user=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/petitions/{petition_id}/follow", status_code=status.HTTP_204_NO_CONTENT, summary="Stop following a petition"
)
def unfollow(
    petition_id: Id, user: CurrentUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    service.unfollow(db=db, petition=petition, user=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
