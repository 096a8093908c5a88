"""JSON API for reports: the public tally, and organizers' exports with their history."""

from dataclasses import asdict
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from app.core.database import PublicSessionDep, SessionDep, SessionmakerDep, read_consistently
from app.core.pagecache import shared_when_signed_out
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.types import Id
from app.petitions import service as petitions
from app.reports import exports, organization, service
from app.responses import scoreboard as scoreboards
from app.routes.policy import OptionalUser, OrganizedPetition, Organizer

router = APIRouter(prefix="/api/v1", tags=["reports"], route_class=UnitOfWorkRoute)


class ExportRequest(BaseModel):
    kind: Literal["tally", "signers"]
    format: Literal["csv", "json", "xlsx", "pdf"]


class ExportRead(BaseModel):
    at: datetime
    actor_name: str
    kind: str
    format: str


@router.get(
    "/petitions/{petition_id}/tally",
    summary="The petition's tally report (aggregate numbers only)",
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
)
@shared_when_signed_out
def tally_report(
    petition_id: Id,
    user: OptionalUser,
    primary: SessionDep,
    db: PublicSessionDep,
    rt: RuntimeDep,
    format: Literal["json", "csv"] = Query("json"),
) -> Response:
    """Totals, signatures over time, thresholds, responses and department/location breakdowns in which every
    group smaller than the minimum group size is suppressed (`null`), with the cells that would reveal it.
    While the petition is open, only its organizers get the breakdowns and the hourly series."""
    # Who may read, and whether as an organizer, is decided on the primary; only the numbers come from the replica.
    read_consistently(db)
    petition = petitions.get_readable_on(db, db=primary, rt=rt, petition_id=petition_id, user=user)
    public = not petitions.is_organizer(db=primary, petition=petition, user=user)
    return Response(
        service.tally_file(db=db, rt=rt, petition=petition, fmt=format, public=public),
        media_type=exports.MEDIA_TYPES[format],
    )


@router.post(
    "/petitions/{petition_id}/exports",
    summary="Export the tally or the signer list (organizers)",
    responses={
        200: {
            "content": {media: {} for media in exports.MEDIA_TYPES.values()},
            "description": "The file, as an attachment",
        }
    },
)
def export(
    petition_id: Id,
    body: ExportRequest,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    sessions: SessionmakerDep,
    rt: RuntimeDep,
) -> Response:
    """Recorded in the audit log before the file is sent; the signer list holds only names signers chose to
    show, never anonymous signers."""
    return service.audited_export(
        db=db, sessions=sessions, rt=rt, actor=user, petition=petition, kind=body.kind, fmt=body.format, via="api"
    )


@router.get(
    "/petitions/{petition_id}/exports",
    response_model=list[ExportRead],
    summary="Who exported what from this petition, newest first (organizers)",
)
def export_history(petition_id: Id, user: Organizer, petition: OrganizedPetition, db: SessionDep) -> list[object]:
    return list(service.history(db=db, petition_id=petition.id))


@router.get(
    "/reports/organization",
    summary="Petitions by status, signatures per month, response performance",
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
)
def organization_report(
    user: OptionalUser,
    db: SessionDep,
    rt: RuntimeDep,
    months: int = Query(12, ge=1, le=scoreboards.MAX_MONTHS),
    format: Literal["json", "csv"] = Query("json"),
) -> Response:
    """The petitions everyone can see, counted; the scoreboard's response figures are at /api/v1/scoreboard."""
    org = organization.build(db=db, now=rt.clock.now(), months=months)
    if format == "csv":
        return Response(organization.as_csv(org), media_type=exports.MEDIA_TYPES["csv"])
    return JSONResponse(
        {
            "generated_at": org.generated_at.isoformat(),
            "by_state": [asdict(row) for row in org.by_state],
            "signatures_by_month": [asdict(row) for row in org.signatures_by_month],
        }
    )
