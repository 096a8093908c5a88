"""Report pages: the public tally report, and the organizers' export panel."""

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.core.database import PublicSessionDep, SessionDep, SessionmakerDep, read_consistently
from app.core.pagecache import shared_when_signed_out
from app.core.pages import FormFields
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.templating import render
from app.core.types import Id
from app.petitions import service as petitions
from app.reports import exports, organization, service, tally
from app.responses.chart import bar_chart_svg
from app.routes.policy import Admin, OptionalUser, OrganizedPetition, Organizer

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)


@router.get("/petitions/{petition_id}/report", response_class=HTMLResponse)
@shared_when_signed_out
def report(
    request: Request, petition_id: Id, user: OptionalUser, primary: SessionDep, db: PublicSessionDep, rt: RuntimeDep
) -> Response:
    # Who may read, and whether as an organizer, is decided on the primary; only the numbers come from the replica.
    read_consistently(db)
    petition = petitions.get_readable_on(db, db=primary, rt=rt, petition_id=petition_id, user=user)
    organizer = petitions.is_organizer(db=primary, petition=petition, user=user)
    built = tally.build(db=db, rt=rt, petition=petition, public=not organizer)
    return render(
        request,
        "reports/report.html",
        {"petition": petition, "report": built, "organizer": organizer, "chart_svg": tally.chart_svg(built)},
    )


@router.get("/petitions/{petition_id}/export", response_class=HTMLResponse)
def export_panel(
    request: Request, petition_id: Id, user: Organizer, petition: OrganizedPetition, db: SessionDep
) -> Response:
    return render(
        request,
        "reports/export.html",
        {
            "petition": petition,
            "history": service.history(db=db, petition_id=petition.id),
            "pdf_limit": exports.PDF_SIGNER_LIMIT,
        },
    )


@router.post("/petitions/{petition_id}/export")
def export(
    petition_id: Id,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    sessions: SessionmakerDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    kind, fmt = fields.get("kind", ""), fields.get("format", "")
    service.check_choice(kind=kind, fmt=fmt)
    return service.audited_export(
        db=db, sessions=sessions, rt=rt, actor=user, petition=petition, kind=kind, fmt=fmt, via="page"
    )


def signatures_chart(org: organization.OrganizationReport) -> str:
    return bar_chart_svg(
        title="Signatures per month",
        labels=[month.label for month in org.signatures_by_month],
        series=[("Signatures", [month.signatures for month in org.signatures_by_month], tally.CHART_COLOUR)],
        unit="Signatures",
    )


@router.get("/admin/report", response_class=HTMLResponse)
def organization_report(
    request: Request, admin: Admin, db: SessionDep, rt: RuntimeDep, format: str = Query("html", pattern="^(html|csv)$")
) -> Response:
    org = organization.build(db=db, now=rt.clock.now(), everything=True)
    if format == "csv":
        return Response(
            organization.as_csv(org),
            media_type=exports.MEDIA_TYPES["csv"],
            headers={"Content-Disposition": 'attachment; filename="organization-report.csv"'},
        )
    return render(request, "reports/organization.html", {"org": org, "chart_svg": signatures_chart(org)})
