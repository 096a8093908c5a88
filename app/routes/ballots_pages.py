"""Pages for polls and ballots (issue #25): the list, creating one (pulse or a petition's), answering, results and
their downloads, closing early, and the organizers' ratification of a response.

Answering itself is the wallet's (static/ballot.js, cookie-less, through the API): this page holds its form and,
without JavaScript, says how to answer with `undersigned client answer`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ballots import answers as ballot_answers
from app.ballots import audiences, editing
from app.ballots import service as ballots
from app.core.clock import to_the_hour
from app.core.database import SessionDep
from app.core.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from app.core.forms import CORRECT_FIELDS
from app.core.i18n import N_
from app.core.pages import FormFields, form_error, refused
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import Runtime, RuntimeDep
from app.core.templating import redirect, render
from app.core.types import Id
from app.models.accounts import Role, User
from app.models.ballots import (
    AUDIENCE_LABELS,
    KIND_LABELS,
    STATE_LABELS,
    Ballot,
    BallotAudience,
    BallotKind,
    BallotState,
)
from app.models.petitions import Petition
from app.models.signatures import GroupKind
from app.reports import ballots as ballot_reports
from app.reports.pdf.ballot import ballot_pdf
from app.responses import service as responses
from app.routes.policy import CurrentUser, OptionalUser, OrganizedPetition, Organizer, PulseAuthor
from app.signatures import groups as signer_groups

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)

DOWNLOAD_MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json", "pdf": "application/pdf"}
RATIFICATION_DAYS = 14  # the closing the ratification form suggests


def ballot_url(rt: Runtime, ballot: Ballot) -> str:
    return f"{rt.settings.base_url.rstrip('/')}/polls/{ballot.id}"


# -- the list ------------------------------------------------------------------------------------------------


@router.get("/polls", response_class=HTMLResponse)
def index(request: Request, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    items = ballot_reports.listed(ballots.list_visible(db=db, rt=rt, user=user), rt.clock.now())
    by_state: dict[BallotState, list[ballot_reports.Listed]] = {state: [] for state in BallotState}
    for item in items:
        by_state[item.state].append(item)
    sections = [
        ("open", N_("Open now"), by_state[BallotState.open]),
        ("scheduled", N_("Opening soon"), by_state[BallotState.scheduled]),
        ("closed", N_("Closed"), by_state[BallotState.closed]),
    ]
    may_ask = user is not None and user.is_verified and (user.has_role(Role.responder) or user.has_role(Role.admin))
    petition_ids = {item.ballot.petition_id for item in items if item.ballot.petition_id is not None}
    titles = dict(db.execute(select(Petition.id, Petition.title).where(Petition.id.in_(petition_ids))).all())
    return render(request, "ballots/index.html", {"sections": sections, "may_ask": may_ask, "petition_titles": titles})


# -- creating ------------------------------------------------------------------------------------------------


def _hour(fields: dict[str, str], name: str, errors: dict[str, str], rt: Runtime) -> datetime | None:
    """A form's date and time, read as UTC (the service rounds it to the hour); an error for the field when it is
    not a date and time."""
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "T"))
    except ValueError:
        errors[name] = N_("Enter a date and time like 2027-03-31 17:00.")
        return None
    return moment.replace(tzinfo=rt.clock.now().tzinfo)


def _whole(fields: dict[str, str], name: str, errors: dict[str, str]) -> int | None:
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        errors[name] = N_("Enter a whole number, like 12.")
        return None


GROUP_FIELD = "group-"  # one checkbox per department or location: "group-<id>"


def _chosen_groups(fields: dict[str, str], errors: dict[str, str]) -> list[int]:
    """The departments and locations ticked on the form (the service checks they exist)."""
    chosen = []
    for name, value in fields.items():
        if not name.startswith(GROUP_FIELD) or value not in ("1", "on", "true"):
            continue
        raw = name.removeprefix(GROUP_FIELD)
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
            errors["groups"] = N_("Choose departments and locations from the organization's lists.")
            continue
        chosen.append(int(raw))
    return chosen


def _create_from_form(
    db: SessionDep, rt: Runtime, *, actor: User, petition: Petition | None, fields: dict[str, str]
) -> Ballot:
    """The form's fields as the service's arguments: what cannot be read as a number, a kind or an hour is refused
    with the service's own checks of the other fields, in one round."""
    errors: dict[str, str] = {}
    kind = fields.get("kind", "")
    if kind not in BallotKind.__members__:
        errors["kind"] = N_("Choose one of the options.")
    audience = fields.get("audience", BallotAudience.members.value if petition is None else "")
    if audience not in BallotAudience.__members__:
        errors["audience"] = N_("Choose one of the options.")
    options = [line.strip() for line in fields.get("options", "").splitlines() if line.strip()]
    groups = _chosen_groups(fields, errors)
    max_choices = _whole(fields, "max_choices", errors)
    min_answers = _whole(fields, "min_answers", errors)
    opens_at = _hour(fields, "opens_at", errors, rt)
    closes_at = _hour(fields, "closes_at", errors, rt)
    if closes_at is None and "closes_at" not in errors:
        errors["closes_at"] = N_("This is required.")
    try:
        ballot = ballots.create(
            db,
            rt,
            actor=actor,
            petition=petition,
            kind=BallotKind(kind) if "kind" not in errors else BallotKind.single,
            question=fields.get("question", ""),
            options=options,
            # The form's number of choices is for multiple and ranked choice only; the others take one.
            max_choices=max_choices if kind in (BallotKind.multiple, BallotKind.ranked) else None,
            audience=BallotAudience(audience) if "audience" not in errors else BallotAudience.members,
            opens_at=opens_at,
            closes_at=closes_at or rt.clock.now() + timedelta(days=7),
            results_live=fields.get("results_live") in ("1", "on", "true"),
            min_answers=min_answers,
            note=fields.get("note"),
            groups=groups,
        )
    except InvalidInput as error:
        # The fields this form could not even read are listed with the service's own refusals, in one round.
        error.fields = {**error.fields, **errors}
        raise
    if errors:
        raise InvalidInput(CORRECT_FIELDS, fields=errors)
    return ballot


def _new_context(db: Session, petition: Petition | None, rt: Runtime) -> dict[str, object]:
    audience_labels = {
        audience: label
        for audience, label in AUDIENCE_LABELS.items()
        if petition is not None or audience is not BallotAudience.signers
    }
    return {
        "petition": petition,
        "kind_labels": KIND_LABELS,
        "audience_labels": audience_labels,
        "departments": signer_groups.listing(db=db, kind=GroupKind.department),
        "locations": signer_groups.listing(db=db, kind=GroupKind.location),
        "min_group_size": rt.settings.min_group_size,
        "action": f"/petitions/{petition.id}/polls/new" if petition else "/polls/new",
    }


def _new_values(rt: Runtime, petition: Petition | None) -> dict[str, object]:
    closes = to_the_hour(rt.clock.now()) + timedelta(days=7)
    return {
        "kind": BallotKind.single.value,
        "audience": (BallotAudience.signers if petition else BallotAudience.members).value,
        "min_answers": str(rt.settings.min_group_size),
        "max_choices": "3",
        "closes_at": closes.strftime("%Y-%m-%dT%H:%M"),
    }


@router.get("/polls/new", response_class=HTMLResponse)
def new_pulse_page(request: Request, user: PulseAuthor, db: SessionDep, rt: RuntimeDep) -> Response:
    return render(request, "ballots/new.html", {**_new_context(db, None, rt), "values": _new_values(rt, None)})


@router.post("/polls/new", response_class=HTMLResponse)
def new_pulse(request: Request, user: PulseAuthor, db: SessionDep, rt: RuntimeDep, fields: FormFields) -> Response:
    try:
        ballot = _create_from_form(db, rt, actor=user, petition=None, fields=fields)
    except AppError as error:
        return form_error(request, "ballots/new.html", error, fields, _new_context(db, None, rt))
    return redirect(
        request, f"/polls/{ballot.id}", N_("Poll created. Members collect its credential with their wallet.")
    )


@router.get("/petitions/{petition_id}/polls/new", response_class=HTMLResponse)
def new_petition_poll_page(
    request: Request, petition_id: Id, user: Organizer, petition: OrganizedPetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    return render(request, "ballots/new.html", {**_new_context(db, petition, rt), "values": _new_values(rt, petition)})


@router.post("/petitions/{petition_id}/polls/new", response_class=HTMLResponse)
def new_petition_poll(
    request: Request,
    petition_id: Id,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    try:
        ballot = _create_from_form(db, rt, actor=user, petition=petition, fields=fields)
    except AppError as error:
        return form_error(request, "ballots/new.html", error, fields, _new_context(db, petition, rt))
    return redirect(request, f"/polls/{ballot.id}", N_("Poll created."))


# -- ratification --------------------------------------------------------------------------------------------


def _ratify_context(petition: Petition, response_id: int) -> dict[str, object]:
    return {"petition": petition, "action": f"/petitions/{petition.id}/responses/{response_id}/ratify"}


@router.get("/petitions/{petition_id}/responses/{response_id}/ratify", response_class=HTMLResponse)
def ratify_page(
    request: Request,
    petition_id: Id,
    response_id: Id,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> Response:
    response = responses.get_response(db=db, petition=petition, response_id=response_id)
    closes = to_the_hour(rt.clock.now()) + timedelta(days=RATIFICATION_DAYS)
    return render(
        request,
        "ballots/ratify.html",
        {
            **_ratify_context(petition, response.id),
            "response": response,
            "values": {"closes_at": closes.strftime("%Y-%m-%dT%H:%M")},
        },
    )


@router.post("/petitions/{petition_id}/responses/{response_id}/ratify", response_class=HTMLResponse)
def ratify(
    request: Request,
    petition_id: Id,
    response_id: Id,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    response = responses.get_response(db=db, petition=petition, response_id=response_id)
    errors: dict[str, str] = {}
    closes_at = _hour(fields, "closes_at", errors, rt)
    try:
        if closes_at is None:
            raise InvalidInput(CORRECT_FIELDS, fields=errors or {"closes_at": N_("This is required.")})
        ballot = ballots.open_ratification(
            db,
            rt,
            actor=user,
            petition=petition,
            response=response,
            closes_at=closes_at,
            note=fields.get("note", "").strip() or None,
        )
    except AppError as error:
        return form_error(
            request,
            "ballots/ratify.html",
            error,
            fields,
            {**_ratify_context(petition, response.id), "response": response},
        )
    return redirect(
        request,
        f"/polls/{ballot.id}",
        N_("The signers are asked. The result shows on the petition's timeline once the poll closes."),
    )


# -- one ballot ----------------------------------------------------------------------------------------------


@router.get("/polls/{ballot_id}", response_class=HTMLResponse)
def show(request: Request, ballot_id: Id, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    ballot = ballots.get_visible(db=db, rt=rt, ballot_id=ballot_id, user=user)
    options = ballots.options(db=db, ballot=ballot)
    state = ballots.state(ballot, rt.clock.now())
    report = ballot_reports.report_of(db, rt, ballot, [option.label for option in options])
    petition = db.get(Petition, ballot.petition_id) if ballot.petition_id is not None else None
    return render(
        request,
        "ballots/show.html",
        {
            "ballot": ballot,
            "audience_groups": audiences.audience_groups(db=db, ballot=ballot),
            # The member's own groups this poll is put to, each with the number an answer under it hides among.
            "group_choices": audiences.answer_choices(db=db, rt=rt, ballot=ballot, user=user)
            if state is BallotState.open
            else [],
            # A member outside a groups' ballot is told so here, since the wallet offers them no credential for it.
            "outside_audience": user is not None
            and user.is_verified
            and not audiences.in_audience(db=db, ballot=ballot, user=user),
            "options": options,
            "petition": petition,
            "is_open": state is BallotState.open,
            "is_scheduled": state is BallotState.scheduled,
            "is_closed": state is BallotState.closed,
            "state_label": STATE_LABELS[state],
            "kind_label": KIND_LABELS[ballot.kind],
            "report": report,
            "chart_svg": ballot_reports.chart_svg(report),
            "ballot_url": ballot_url(rt, ballot),
            "anonymous_batch_seconds": rt.settings.anonymous_batch_seconds,
            "small_groups": ballot_answers.small_groups(db=db, rt=rt, ballot_id=ballot.id),
            "closing_soon": state is BallotState.open and ballot_answers.closing_soon(ballot, rt),
            "min_group_size": rt.settings.min_group_size,
            "can_close": user is not None
            and state is not BallotState.closed
            and ballots.may_manage(db=db, ballot=ballot, actor=user),
        },
    )


@router.get("/polls/{ballot_id}/results.{fmt}", response_class=Response)
def download(ballot_id: Id, fmt: str, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    if fmt not in DOWNLOAD_MEDIA:
        raise NotFound(N_("There is nothing at this address."))
    ballot = ballots.get_visible(db=db, rt=rt, ballot_id=ballot_id, user=user)
    report = ballot_reports.report_of(db, rt, ballot)
    body: str | bytes
    if fmt == "pdf":
        # Anyone who may read the poll downloads what its page shows, as with the CSV and the JSON: the same
        # published figures, nobody's name, so (unlike an organizer's export of a petition) nothing to audit.
        body = ballot_pdf(
            report,
            organization=rt.settings.organization_name,
            generated_at=rt.clock.now(),
            opens_at=ballot.opens_at,
            closes_at=ballot.closes_at,
            address=ballot_url(rt, ballot),
        )
    else:
        body = ballot_reports.report_csv(report) if fmt == "csv" else ballot_reports.report_json(report)
    return Response(
        body,
        media_type=DOWNLOAD_MEDIA[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="poll-{ballot.id}-results.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


# -- changing ------------------------------------------------------------------------------------------------


def _managed(db: SessionDep, rt: Runtime, ballot_id: int, user: User) -> Ballot:
    """The poll, for one who may change it (its petition's organizers; a pulse poll's author or an admin)."""
    ballot = ballots.get_visible(db=db, rt=rt, ballot_id=ballot_id, user=user)
    if not ballots.may_manage(db=db, ballot=ballot, actor=user):
        raise Forbidden(N_("Only the poll's organizers can change it."))
    if ballots.state(ballot, rt.clock.now()) is BallotState.closed:
        raise Conflict(N_("This poll has closed; it can no longer be changed."))
    return ballot


def _edit_context(db: SessionDep, rt: Runtime, ballot: Ballot) -> dict[str, object]:
    return {
        "ballot": ballot,
        "options": ballots.labels(db=db, ballot=ballot),
        "opened": ballots.state(ballot, rt.clock.now()) is not BallotState.scheduled,
        "kind_label": KIND_LABELS[ballot.kind],
        "fixed_options": ballot.kind is BallotKind.scale or ballot.response_id is not None,
        "action": f"/polls/{ballot.id}/edit",
    }


def _change_from_form(rt: Runtime, ballot: Ballot, fields: dict[str, str], opened: bool) -> editing.Change:
    """The form's fields as a change. Once the poll has opened the form holds only the note and the closing time,
    so nothing else is read; before, an empty opening means now, as on the creation form. What cannot be read as
    a number or an hour is refused with the service's own checks of the rest, in one round (see `_edit`)."""
    errors: dict[str, str] = {}
    closes_at = _hour(fields, "closes_at", errors, rt)
    if closes_at is None and "closes_at" not in errors:
        errors["closes_at"] = N_("This is required.")
    note = fields.get("note", "").strip()
    change = editing.Change(closes_at=closes_at, note=note or None, clear_note=not note)
    if not opened:
        options = [line.strip() for line in fields.get("options", "").splitlines() if line.strip()]
        max_choices = _whole(fields, "max_choices", errors)
        change = dataclasses.replace(
            change,
            question=fields.get("question", ""),
            options=None if ballot.kind is BallotKind.scale and not options else options,
            max_choices=max_choices if ballot.kind in (BallotKind.multiple, BallotKind.ranked) else None,
            opens_at=_hour(fields, "opens_at", errors, rt) or rt.clock.now(),
            results_live=fields.get("results_live") in ("1", "on", "true"),
            min_answers=_whole(fields, "min_answers", errors),
        )
    if errors:
        raise _Unreadable(errors, change)
    return change


class _Unreadable(Exception):
    """Fields the form could not read, with the change made of the others (for the service's checks of them)."""

    def __init__(self, errors: dict[str, str], change: editing.Change) -> None:
        super().__init__("unreadable fields")
        self.errors, self.change = errors, change


def _edit(db: SessionDep, rt: Runtime, *, user: User, ballot: Ballot, fields: dict[str, str]) -> Ballot:
    opened = ballots.state(ballot, rt.clock.now()) is not BallotState.scheduled
    unreadable: dict[str, str] = {}
    try:
        change = _change_from_form(rt, ballot, fields, opened)
    except _Unreadable as found:
        unreadable, change = found.errors, found.change
    try:
        changed = editing.apply(db, rt, actor=user, ballot=ballot, change=change)
    except InvalidInput as error:
        error.fields = {**error.fields, **unreadable}
        raise
    if unreadable:
        raise InvalidInput(CORRECT_FIELDS, fields=unreadable)
    return changed


def _edit_values(rt: Runtime, ballot: Ballot, options: list[str]) -> dict[str, object]:
    return {
        "question": ballot.question,
        "options": "" if ballot.kind is BallotKind.scale else "\n".join(options),
        "max_choices": str(ballot.max_choices),
        "opens_at": ballot.opens_at.strftime("%Y-%m-%dT%H:%M"),
        "closes_at": ballot.closes_at.strftime("%Y-%m-%dT%H:%M"),
        "min_answers": str(ballot.min_answers),
        "results_live": "1" if ballot.results_live else "",
        "note": ballot.note or "",
    }


@router.get("/polls/{ballot_id}/edit", response_class=HTMLResponse)
def edit_page(request: Request, ballot_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> Response:
    ballot = _managed(db, rt, ballot_id, user)
    context = _edit_context(db, rt, ballot)
    return render(
        request,
        "ballots/edit.html",
        {**context, "values": _edit_values(rt, ballot, ballots.labels(db=db, ballot=ballot))},
    )


@router.post("/polls/{ballot_id}/edit", response_class=HTMLResponse)
def edit(
    request: Request, ballot_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    ballot = _managed(db, rt, ballot_id, user)
    context = _edit_context(db, rt, ballot)
    try:
        _edit(db, rt, user=user, ballot=ballot, fields=fields)
    except AppError as error:
        return form_error(request, "ballots/edit.html", error, fields, context)
    return redirect(request, f"/polls/{ballot.id}", N_("The poll is changed."))


@router.post("/polls/{ballot_id}/close", response_class=HTMLResponse)
def close(request: Request, ballot_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> Response:
    ballot = ballots.get_visible(db=db, rt=rt, ballot_id=ballot_id, user=user)
    try:
        ballots.close_early(db, rt, actor=user, ballot=ballot)
    except AppError as error:
        return refused(request, f"/polls/{ballot_id}", error)
    return redirect(request, f"/polls/{ballot_id}", N_("The poll is closed; the answers counted stay counted."))
