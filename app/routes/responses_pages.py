"""Pages for leadership's responses: the responders' dashboard, posting a response, commitments, judgement."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.core.database import SessionDep
from app.core.errors import AppError, InvalidInput
from app.core.forms import CORRECT_FIELDS, validate
from app.core.i18n import N_
from app.core.pages import FormFields, form_error, refused
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.templating import redirect, render, translate
from app.core.types import Id
from app.models.responses import COMMITMENT_LABELS, RESPONSE_LABELS
from app.responses import schemas, service
from app.routes.policy import OrganizedPetition, Organizer, RespondablePetition, Responder

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)

COMMITMENT_ROWS = 3


@router.get("/responders", response_class=HTMLResponse)
def dashboard(request: Request, responder: Responder, db: SessionDep, rt: RuntimeDep) -> Response:
    now = rt.clock.now()
    return render(
        request,
        "responses/dashboard.html",
        {
            "due": service.awaiting_response(db=db, now=now),
            "now": now,
            "overdue_commitments": service.overdue_commitments(db=db, today=now.date()),
        },
    )


def _form_context(petition_id: Id) -> dict[str, object]:
    return {"statuses": RESPONSE_LABELS, "rows": range(COMMITMENT_ROWS), "action": f"/petitions/{petition_id}/respond"}


@router.get("/petitions/{petition_id}/respond", response_class=HTMLResponse)
def respond_page(
    request: Request,
    petition_id: Id,
    responder: Responder,
    petition: RespondablePetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> Response:
    # Read through the same rule as the petition's own page: a draft or a hidden petition is not a responder's.
    return render(request, "responses/form.html", {"petition": petition, **_form_context(petition_id)})


def _filled_rows(fields: dict[str, str]) -> list[int]:
    """The page's commitment rows with anything typed in them: rows left wholly empty are not commitments."""
    return [
        row
        for row in range(COMMITMENT_ROWS)
        if any(fields.get(f"commitments.{row}.{name}", "").strip() for name in ("text", "owner", "due_on"))
    ]


def _response_form(fields: dict[str, str]) -> dict[str, object]:
    """The flat page form as the API's shape."""
    commitments = [
        {name: fields.get(f"commitments.{row}.{name}", "") for name in ("text", "owner", "due_on")}
        for row in _filled_rows(fields)
    ]
    return {
        "summary": fields.get("summary", ""),
        "details": fields.get("details", ""),
        "status": fields.get("status", ""),
        "commitments": commitments,
        "responder_role": fields.get("responder_role", ""),
    }


def _on_page_rows(error: AppError, fields: dict[str, str]) -> AppError:
    """Name each commitment's message by its row on the page: the API's list skips the rows left empty."""
    rows = _filled_rows(fields)
    renamed = {}
    for name, message in error.fields.items():
        parts = name.split(".")
        if len(parts) > 2 and parts[0] == "commitments" and parts[1].isdigit() and int(parts[1]) < len(rows):
            parts[1] = str(rows[int(parts[1])])
        renamed[".".join(parts)] = message
    error.fields = renamed
    return error


@router.post("/petitions/{petition_id}/respond", response_class=HTMLResponse)
def respond(
    request: Request,
    petition_id: Id,
    responder: Responder,
    petition: RespondablePetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    try:
        service.post_response(
            db=db,
            rt=rt,
            petition=petition,
            responder=responder,
            form=validate(schemas.ResponseCreate, _response_form(fields), checks=service.response_checks(rt=rt)),
        )
    except AppError as error:
        return form_error(
            request,
            "responses/form.html",
            _on_page_rows(error, fields),
            fields,
            {"petition": petition, **_form_context(petition_id)},
        )
    return redirect(
        request,
        f"/petitions/{petition.id}#responses",
        N_("Response published. Signers who asked for updates and followers are told by email."),
    )


@router.post("/commitments/{commitment_id}/update", response_class=HTMLResponse)
def update_commitment(
    request: Request, commitment_id: Id, responder: Responder, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    commitment = service.get_commitment(db=db, commitment_id=commitment_id)
    target = f"/petitions/{commitment.petition_id}#commitment-{commitment.id}"
    try:
        service.update_commitment(
            db=db, rt=rt, commitment=commitment, responder=responder, form=validate(schemas.CommitmentChange, fields)
        )
    except AppError as error:
        return refused(request, target, error)
    return redirect(
        request,
        target,
        translate(
            request,
            N_("Commitment updated: %(status)s."),
            status=translate(request, COMMITMENT_LABELS[commitment.status]).lower(),
        ),
    )


def _require_answer(answer: str | None) -> None:
    """The form's yes or no, checked with its other fields so that every error shows in one round."""
    if answer not in ("yes", "no"):
        raise InvalidInput(CORRECT_FIELDS, fields={"answers": N_("Say whether the response answers the petition.")})


@router.post("/petitions/{petition_id}/responses/{response_id}/judgement", response_class=HTMLResponse)
def judge(
    request: Request,
    petition_id: Id,
    response_id: Id,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    response = service.get_response(db=db, petition=petition, response_id=response_id)
    target = f"/petitions/{petition.id}#response-{response.id}"
    try:
        form = validate(
            schemas.JudgementCreate,
            {
                "answers": fields.get("answers") == "yes",
                "reason": fields.get("reason"),
                "follow_up": fields.get("follow_up") in ("1", "on", "true"),
            },
            checks={"answers": lambda _: _require_answer(fields.get("answers"))},
        )
        service.judge(db=db, rt=rt, petition=petition, response=response, organizer=user, form=form)
    except AppError as error:
        return refused(request, target, error)
    return redirect(
        request,
        target,
        N_("Your judgement is shown next to the response. Leadership is asked for a follow-up.")
        if form.follow_up
        else N_("Your judgement is shown next to the response."),
    )
