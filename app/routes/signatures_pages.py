"""Signing pages: sign, withdraw, hide one's name, and what organizers and signers see."""

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.anonymous.schemas import TokenRead
from app.core.database import SessionDep
from app.core.forms import validate
from app.core.i18n import N_
from app.core.pages import FormFields
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.templating import redirect, render
from app.core.types import Id
from app.models.signatures import Visibility
from app.petitions import service as petitions
from app.routes.policy import CurrentUser, OrganizedPetition, Organizer
from app.signatures import service

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)

SIGNED = {
    Visibility.public: N_("Signed. Your name is shown with the petition."),
    Visibility.organizers: N_("Signed. Only the petition's organizers can see your name."),
}

FORFEITED = {
    Visibility.public: N_(
        "Signed. Your name is shown with the petition. You gave up signing it anonymously: the "
        "signature log counts one forfeit, without your name."
    ),
    Visibility.organizers: N_(
        "Signed. Only the petition's organizers can see your name. You gave up signing it "
        "anonymously: the signature log counts one forfeit, without your name."
    ),
}


@router.post("/petitions/{petition_id}/sign", response_class=HTMLResponse)
def sign(
    request: Request, petition_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    visibility = fields.get("visibility", "")
    # The wallet script fills these in when it holds this petition's anonymous-signing token.
    token = None
    if fields.get("token_message") and fields.get("token_signature"):
        token = validate(
            TokenRead, {"message": fields["token_message"], "signature": fields["token_signature"]}
        ).decoded()
    # The sign panel's explicit choice, for a member issued a token that this browser may not hold: the server
    # cannot know what the browser holds, so the form asks.
    forfeit = fields.get("forfeit") in ("1", "on", "true")
    signed = service.sign(
        db=db,
        rt=rt,
        petition_id=petition_id,
        user=user,
        visibility=visibility,
        notify_updates=fields.get("notify_updates") in ("1", "on", "true"),
        department=fields.get("department"),
        location=fields.get("location"),
        token=token,
        forfeit=forfeit,
    )
    message = (FORFEITED if signed.forfeited else SIGNED)[Visibility(visibility)]
    return redirect(request, f"/petitions/{petition_id}#sign", message)


@router.post("/petitions/{petition_id}/withdraw", response_class=HTMLResponse)
def withdraw(request: Request, petition_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> Response:
    petition = petitions.get_for_signing(db=db, rt=rt, petition_id=petition_id, user=user)
    service.withdraw(db=db, petition=petition, user=user)
    return redirect(request, f"/petitions/{petition.id}#sign", N_("Your signature is withdrawn and no longer counted."))


@router.post("/petitions/{petition_id}/hide-name", response_class=HTMLResponse)
def hide_name(request: Request, petition_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> Response:
    petition = petitions.get_for_signing(db=db, rt=rt, petition_id=petition_id, user=user)
    service.hide_name(db=db, rt=rt, petition=petition, user=user)
    return redirect(request, f"/petitions/{petition.id}#sign", N_("Your name is now visible only to the organizers."))


@router.get("/petitions/{petition_id}/signers", response_class=HTMLResponse)
def signers(
    request: Request,
    petition_id: Id,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    per_page = 200
    names = service.names_for_organizers(
        db=db, rt=rt, petition=petition, limit=per_page + 1, offset=(page - 1) * per_page
    )
    return render(
        request,
        "signatures/signers.html",
        {"petition": petition, "names": names[:per_page], "page": page, "more": len(names) > per_page},
    )
