"""The moderators' pages: the queue, reviewing one petition, decisions."""

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from app.comments import moderation as comment_moderation
from app.core.database import SessionDep
from app.core.errors import AppError
from app.core.forms import validate
from app.core.i18n import N_
from app.core.pages import FormFields, form_error, refused
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.templating import format_when, redirect, render, translate
from app.core.types import Id
from app.models.accounts import User
from app.models.lifecycle import LABELS
from app.moderation import service
from app.moderation.schemas import Hiding, InvalidationRequest, InvalidationRule, Rejection
from app.petitions import service as petitions
from app.routes.petitions_pages import background_html
from app.routes.policy import ModeratedPetition, Moderator
from app.signatures import integrity

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)

# The petition's record in words: what each event means, for moderators reading it.
EVENT_LABELS = {
    "drafted": N_("Drafted"),
    "sent_to_sponsors": N_("Sent to colleagues for sponsorship"),
    "sent_to_moderation": N_("Sponsored, and sent to the moderators"),
    "opened": N_("Opened for signatures"),
    "closed": N_("Closed"),
    "rejected": N_("Rejected"),
    "hidden": N_("Hidden by a moderator"),
    "restored": N_("Made visible again"),
    "archived": N_("Archived (signers' details erased)"),
    "new_version": N_("Text corrected"),
    "update_posted": N_("Update posted"),
    "response_threshold_reached": N_("Reached the response threshold"),
    "response_due": N_("Response clock started"),
    "escalation_threshold_reached": N_("Reached the escalation threshold"),
    "response_posted": N_("Leadership responded"),
    "commitment_updated": N_("Commitment updated"),
    "response_judged": N_("Organizers judged the response"),
    "follow_up_requested": N_("Organizers asked for a follow-up"),
    "signatures_voided": N_("Signatures voided by moderators"),
    "issuing_key_destroyed": N_("Anonymous-signing key destroyed"),
    "anonymous_small_batch": N_("Anonymous signatures published in a small batch"),
}


@router.get("/moderation", response_class=HTMLResponse)
def queue(request: Request, moderator: Moderator, db: SessionDep, rt: RuntimeDep) -> Response:
    return render(
        request,
        "moderation/queue.html",
        {
            "queue": service.queue(db=db),
            "decisions": service.recent_decisions(db=db),
            "now": rt.clock.now(),
            "state_labels": LABELS,
            "alerts": integrity.velocity_alerts(db=db, rt=rt, now=rt.clock.now()),
            "flagged_comments": comment_moderation.waiting(db=db),
            "since_hour": rt.clock.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1),
        },
    )


@router.get("/moderation/petitions/{petition_id}", response_class=HTMLResponse)
def review(
    request: Request, petition_id: Id, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    timeline = petitions.timeline(db=db, petition=petition, include_private=True)
    # Who decided each step, so the record reads "Opened for signatures, by Morgan" (one query for all of them).
    deciders = {event.actor_id for event in timeline if event.actor_id is not None}
    actors = (
        {user.id: user.display_name for user in db.scalars(select(User).where(User.id.in_(deciders)))}
        if deciders
        else {}
    )
    return render(
        request,
        "moderation/review.html",
        {
            "petition": petition,
            "state_label": LABELS[petition.state],
            "background_html": background_html(petition.background),
            "holder": service.lock_holder(db=db, petition=petition, now=rt.clock.now()),
            "reasons": service.rejection_reasons(db=db),
            "timeline": timeline,
            "event_labels": EVENT_LABELS,
            "actors": actors,
            "organizers": petitions.organizer_accounts(db=db, petition=petition),
        },
    )


def _back(petition_id: Id) -> str:
    return f"/moderation/petitions/{petition_id}"


@router.post("/moderation/petitions/{petition_id}/claim", response_class=HTMLResponse)
def claim(
    request: Request, petition_id: Id, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    until = service.claim(db=db, rt=rt, petition=petition, moderator=moderator)
    return redirect(
        request,
        _back(petition_id),
        translate(
            request,
            N_("You are reviewing this petition; other moderators see that until %(time)s UTC."),
            time=format_when(request, until, "HH:mm"),
        ),
    )


@router.post("/moderation/petitions/{petition_id}/release", response_class=HTMLResponse)
def release(
    request: Request, petition_id: Id, moderator: Moderator, petition: ModeratedPetition, db: SessionDep
) -> Response:
    service.release(db=db, petition=petition, moderator=moderator)
    return redirect(request, "/moderation", N_("Released for another moderator."))


@router.post("/moderation/petitions/{petition_id}/open", response_class=HTMLResponse)
def approve(
    request: Request, petition_id: Id, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    service.approve(db=db, rt=rt, petition=petition, moderator=moderator)
    return redirect(
        request, "/moderation", translate(request, N_("“%(title)s” is open for signatures."), title=petition.title)
    )


@router.post("/moderation/petitions/{petition_id}/reject", response_class=HTMLResponse)
def reject(
    request: Request,
    petition_id: Id,
    moderator: Moderator,
    petition: ModeratedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    try:
        # The reason is checked against the list in the same round as the note, so both errors show at once.
        rejection = validate(
            Rejection,
            {"reason": fields.get("reason", ""), "note": fields.get("note")},
            checks={"reason": lambda code: service.rejection_reason(db=db, code=code)},
        )
        service.reject(db=db, rt=rt, petition=petition, moderator=moderator, code=rejection.reason, note=rejection.note)
    except AppError as error:
        return refused(request, _back(petition_id), error)
    return redirect(
        request,
        "/moderation",
        translate(request, N_("“%(title)s” was rejected; its organizers are told why."), title=petition.title),
    )


@router.post("/moderation/petitions/{petition_id}/hide", response_class=HTMLResponse)
def hide(
    request: Request,
    petition_id: Id,
    moderator: Moderator,
    petition: ModeratedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    try:
        hiding = validate(Hiding, {"reason": fields.get("hidden_reason", "")})
        service.hide(db=db, rt=rt, petition=petition, moderator=moderator, reason=hiding.reason)
    except AppError as error:
        return refused(request, _back(petition_id), error)
    return redirect(
        request,
        "/moderation",
        translate(request, N_("“%(title)s” is hidden; its organizers are told why."), title=petition.title),
    )


@router.post("/moderation/petitions/{petition_id}/restore", response_class=HTMLResponse)
def restore(
    request: Request, petition_id: Id, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    service.restore(db=db, rt=rt, petition=petition, moderator=moderator)
    return redirect(
        request, _back(petition_id), translate(request, N_("“%(title)s” is visible again."), title=petition.title)
    )


@router.get("/moderation/petitions/{petition_id}/signatures", response_class=HTMLResponse)
def signatures_page(
    request: Request, petition_id: Id, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    return render(
        request,
        "moderation/invalidate.html",
        {
            "petition": petition,
            "history": integrity.invalidations(db=db, petition=petition),
            "smallest_rule": rt.settings.min_group_size,
        },
    )


@router.post("/moderation/petitions/{petition_id}/signatures/preview", response_class=HTMLResponse)
def preview_invalidation(
    request: Request,
    petition_id: Id,
    moderator: Moderator,
    petition: ModeratedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    context = {
        "petition": petition,
        "history": integrity.invalidations(db=db, petition=petition),
        "smallest_rule": rt.settings.min_group_size,
    }
    try:
        entries = integrity.parse_rule(validate(InvalidationRule, {"rule": fields.get("rule", "")}).rule)
        matched = integrity.preview(db=db, rt=rt, petition=petition, moderator=moderator, entries=entries)
    except AppError as error:
        return form_error(request, "moderation/invalidate.html", error, fields, context)
    return render(
        request,
        "moderation/invalidate.html",
        {**context, "values": {"rule": fields.get("rule", ""), "reason": fields.get("reason", "")}, "matched": matched},
    )


@router.post("/moderation/petitions/{petition_id}/signatures/void", response_class=HTMLResponse)
def void_signatures(
    request: Request,
    petition_id: Id,
    moderator: Moderator,
    petition: ModeratedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    context = {
        "petition": petition,
        "history": integrity.invalidations(db=db, petition=petition),
        "smallest_rule": rt.settings.min_group_size,
    }
    try:
        voiding = validate(InvalidationRequest, fields)
        record = integrity.invalidate(
            db=db,
            rt=rt,
            petition=petition,
            moderator=moderator,
            entries=integrity.parse_rule(voiding.rule),
            reason=voiding.reason,
            expected=voiding.expected,
        )
    except AppError as error:
        return form_error(request, "moderation/invalidate.html", error, fields, context)
    return redirect(
        request,
        f"/moderation/petitions/{petition_id}/signatures",
        translate(
            request,
            N_("%(count)s signature voided and recorded.")
            if record.matched == 1
            else N_("%(count)s signatures voided and recorded."),
            count=record.matched,
        ),
    )
