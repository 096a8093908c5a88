"""JSON API for signing."""

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse, Response

from app.core.database import SessionDep
from app.core.errors import NotFound, errors
from app.core.i18n import N_
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.types import Id, Offset
from app.log import service as signature_log
from app.models.signatures import GroupKind
from app.petitions import service as petitions
from app.routes.policy import CurrentUser, OptionalUser, OrganizedPetition, Organizer
from app.signatures import groups, service
from app.signatures.schemas import SignatureRead, SignerGroupRead, SignerRead, SignRequest

router = APIRouter(prefix="/api/v1", tags=["signatures"], route_class=UnitOfWorkRoute)


@router.post(
    "/petitions/{petition_id}/signature",
    responses=errors(409, 429),
    status_code=status.HTTP_201_CREATED,
    response_model=SignatureRead,
    summary="Sign a petition",
)
def sign(petition_id: Id, body: SignRequest, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> Response:
    signed = service.sign(
        db=db,
        rt=rt,
        petition_id=petition_id,
        user=user,
        visibility=body.visibility,
        notify_updates=body.notify_updates,
        department=str(body.department_id) if body.department_id is not None else None,
        location=str(body.location_id) if body.location_id is not None else None,
        token=body.token.decoded() if body.token else None,
        forfeit=body.forfeit,
    )
    signature = signed.signature
    # A response built here skips FastAPI's validation of the return value against the response model, which
    # for a synchronous handler is one more hop to a worker thread: this is the busiest endpoint.
    return JSONResponse(
        SignatureRead(
            petition_id=petition_id,
            visibility=signature.visibility,
            signed_on=signature.signed_hour,
            notify_updates=signature.notify_updates,
            signature_count=signed.signature_count,
        ).model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
    )


@router.get("/petitions/{petition_id}/signature", response_model=SignatureRead, summary="My signature, if any")
def mine(petition_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> SignatureRead:
    petition = petitions.get_for_signing(db=db, rt=rt, petition_id=petition_id, user=user)
    signature = service.own_signature(db=db, petition=petition, user=user)
    if signature is None:
        raise NotFound(N_("You have not signed this petition."))
    return SignatureRead.of(
        signature, petition, leaf=signature_log.leaf_hash(db=db, petition_id=petition.id, index=signature.log_index)
    )


@router.delete(
    "/petitions/{petition_id}/signature",
    responses=errors(409),
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Withdraw my signature while the petition is open",
)
def withdraw(petition_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> Response:
    petition = petitions.get_for_signing(db=db, rt=rt, petition_id=petition_id, user=user)
    service.withdraw(db=db, petition=petition, user=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/petitions/{petition_id}/signers",
    response_model=list[SignerRead],
    summary="Names signers showed to the organizers or everyone (organizers)",
)
def signers(
    petition_id: Id,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    limit: int = Query(200, ge=1, le=1000),
    offset: Offset = 0,
) -> list[object]:
    return list(service.names_for_organizers(db=db, rt=rt, petition=petition, limit=limit, offset=offset))


@router.get(
    "/signer-groups",
    response_model=list[SignerGroupRead],
    summary="Departments and locations signers may give on petitions that collect them",
)
def signer_groups(user: OptionalUser, db: SessionDep) -> list[object]:
    return [group for kind in GroupKind for group in groups.listing(db=db, kind=kind)]
