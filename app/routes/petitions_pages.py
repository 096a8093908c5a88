"""Petition pages: discovery, the staged creation form, the petition page, sponsors, corrections, organizers."""

import base64
from collections.abc import Mapping

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from app.anonymous import anonymity
from app.comments import repository as comments
from app.core.database import SessionDep
from app.core.errors import AppError
from app.core.forms import validate
from app.core.i18n import N_
from app.core.markdown import render_comment
from app.core.pagecache import shared_when_signed_out
from app.core.pages import FormFields, form_error, refused
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.templating import redirect, render, translate
from app.core.types import Id
from app.log import service as signature_log
from app.models.accounts import User
from app.models.lifecycle import LABELS, VISIBLE_STATES, PetitionState
from app.models.petitions import Petition, PetitionEvent
from app.models.responses import COMMITMENT_LABELS, RESPONSE_LABELS
from app.models.signatures import GroupKind, Signature, Visibility
from app.organization import service as organization
from app.petitions import issuing_keys, page_cache, repository, schemas, service, share
from app.petitions.diff import version_diffs
from app.reports import ballots as ballot_reports
from app.reports import poster
from app.responses import service as responses
from app.routes.comments_pages import discussion_context
from app.routes.policy import (
    Anyone,
    CurrentUser,
    OptionalUser,
    OrganizedPetition,
    Organizer,
    ReadablePetition,
    share_when_public,
)
from app.signatures import groups
from app.signatures import service as signatures

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)

FILTER_LABELS = {
    schemas.ListFilter.open: N_("Open"),
    schemas.ListFilter.awaiting_response: N_("Awaiting a response"),
    schemas.ListFilter.responded: N_("Responded"),
    schemas.ListFilter.closed: N_("Closed"),
    schemas.ListFilter.all: N_("All"),
}
SORT_LABELS = {
    schemas.ListSort.most_signed: N_("Most signed"),
    schemas.ListSort.newest: N_("Newest"),
    schemas.ListSort.trending: N_("Trending (last 24 hours)"),
    schemas.ListSort.closing_soon: N_("Closing soon"),
    schemas.ListSort.relevance: N_("Best match"),
}


@router.get("/petitions", response_class=HTMLResponse)
def index(
    request: Request,
    user: OptionalUser,
    db: SessionDep,
    rt: RuntimeDep,
    state: schemas.ListFilter = schemas.ListFilter.open,
    category: str | None = Query(None, max_length=40),
    sort: schemas.ListSort | None = None,
    q: str = Query("", max_length=200),
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    sort = sort or (schemas.ListSort.relevance if q.strip() else schemas.ListSort.most_signed)
    service.close_expired(db=db, rt=rt)  # the check on read: nothing past its deadline is listed as open
    listing = repository.list_petitions(
        db=db,
        now=rt.clock.now(),
        state_filter=state,
        category=category or None,
        sort=sort,
        query=q.strip() or None,
        page=page,
    )
    return render(
        request,
        "petitions/index.html",
        {
            "listing": listing,
            "state": state,
            "category": category or "",
            "sort": sort,
            "q": q,
            "categories": service.categories(db=db),
            "filter_labels": FILTER_LABELS,
            "sort_labels": SORT_LABELS,
            "state_labels": LABELS,
        },
    )


def _form_context(db: SessionDep, similar: list[Petition] | None = None) -> dict[str, object]:
    return {"categories": service.categories(db=db), "similar": similar or []}


@router.get("/petitions/new", response_class=HTMLResponse)
def new_page(request: Request, user: CurrentUser) -> Response:
    return render(request, "petitions/new.html")


@router.post("/petitions/new", response_class=HTMLResponse)
def check_idea(request: Request, user: CurrentUser, db: SessionDep, fields: FormFields) -> Response:
    """Stage one: before the background is written, show open petitions that may already ask for this."""
    try:
        idea = validate(schemas.PetitionIdea, fields)
    except AppError as error:
        return form_error(request, "petitions/new.html", error, fields)
    similar = repository.similar_open(db=db, text=f"{idea.title} {idea.ask}")
    return render(
        request,
        "petitions/form.html",
        {
            # Anonymity starts allowed: the organizer opts out, rather than colleagues who need it missing out.
            **_form_context(db, similar),
            "values": {"title": idea.title, "ask": idea.ask, "allow_anonymous": True},
            "action": "/petitions",
            "heading": "Tell colleagues why",
            "button": "Save draft",
        },
    )


@router.post("/petitions", response_class=HTMLResponse)
def create(request: Request, user: CurrentUser, db: SessionDep, rt: RuntimeDep, fields: FormFields) -> Response:
    try:
        petition = service.create_draft(
            db=db,
            rt=rt,
            creator=user,
            form=validate(schemas.PetitionDraft, fields, checks=service.draft_checks(db=db, rt=rt)),
        )
    except AppError as error:
        return form_error(
            request,
            "petitions/form.html",
            error,
            fields,
            {**_form_context(db), "action": "/petitions", "heading": "Tell colleagues why", "button": "Save draft"},
        )
    return redirect(
        request,
        f"/petitions/{petition.id}",
        N_("Draft saved. Read it through, then send it to colleagues for sponsoring."),
    )


@router.get("/petitions/mine", response_class=HTMLResponse)
def mine(request: Request, user: CurrentUser, db: SessionDep) -> Response:
    return render(
        request,
        "petitions/mine.html",
        {
            "petitions": repository.mine(db=db, user_id=user.id),
            "state_labels": LABELS,
            "signed": signatures.my_signatures(db=db, user=user),
        },
    )


def _log_context(db: SessionDep, rt: RuntimeDep, petition: Petition) -> dict[str, object]:
    latest = signature_log.latest_checkpoint(db=db, petition_id=petition.id)
    if latest is None:
        return {"log_checkpoint": None}
    return {
        "log_checkpoint": latest,
        "log_root": base64.b64encode(latest.root).decode(),
        "log_witnesses": [
            row.witness for row in signature_log.cosigners(db=db, petition_id=petition.id, size=latest.size)
        ],
        # The deployment's witnesses that have not cosigned the head: named, so a lagging one is seen.
        "log_witnesses_missing": _not_cosigned(db, rt, petition.id, latest.size),
        "log_counts": signature_log.counts_of(db, latest),
        "log_waiting": signature_log.waiting(db=db, petition_id=petition.id),
        "log_witnessed": signature_log.witnessed(db=db, petition_id=petition.id, latest=latest),
        "petition_url": share.public_url(rt=rt, petition_id=petition.id),
    }


def _not_cosigned(db: SessionDep, rt: RuntimeDep, petition_id: int, size: int) -> list[str]:
    cosigned = {row.witness for row in signature_log.cosigners(db=db, petition_id=petition_id, size=size)}
    return sorted(name for name in signature_log.witnesses(rt) if name not in cosigned)


def background_html(text: str) -> str:
    """ "Why" as the comments' Markdown subset and sanitiser: browsers send CRLF, so a typed blank line still parts."""
    return render_comment(text.replace("\r\n", "\n").replace("\r", "\n"))


def _timeline(db: SessionDep, rt: RuntimeDep, petition: Petition) -> list[PetitionEvent | ballot_reports.Ratification]:
    """The petition's events, with the result of each closed ratification ballot in its place."""
    events: list[PetitionEvent | ballot_reports.Ratification] = [*service.timeline(db=db, petition=petition)]
    events.extend(ballot_reports.petition_ratifications(db, rt, petition))
    return sorted(events, key=lambda event: event.at)


def _shared_context(db: SessionDep, rt: RuntimeDep, petition: Petition) -> dict[str, object]:
    """What every reader of the petition page sees (app/petitions/page_cache.py keeps it per page version)."""
    issuing_key = issuing_keys.published(db=db, petition_id=petition.id)
    return {
        "petition": petition,
        "state_label": LABELS[petition.state],
        "background_html": background_html(petition.background),
        "next_threshold": service.next_threshold(petition),
        "timeline": _timeline(db, rt, petition),
        # Its polls, and the signers' verdicts on leadership's responses once their ballots closed (issue #25).
        "polls": ballot_reports.petition_polls(db, rt, petition),
        "updates": service.updates(db=db, petition=petition),
        "public_names": signatures.public_names(db=db, petition=petition),
        "sponsors_required": organization.current(db=db, rt=rt).sponsors_required,
        "now": rt.clock.now(),
        "anonymous_batch_seconds": rt.settings.anonymous_batch_seconds,
        "anonymous_max_delay_seconds": rt.settings.anonymous_max_delay_seconds,
        "tally_poll_milliseconds": int(rt.settings.tally_poll_seconds * 1000),
        # The key row holds the anonymous signatures' counter: no second read of it.
        "issuing_key": issuing_key,
        "anonymous_signatures": issuing_key.anonymous_signatures if issuing_key else 0,
        # Its tokens issued and spent by name as the log commits them (what `undersigned verify` holds them to).
        "issued": anonymity.issued_for(db, issuing_key) if issuing_key else None,
        "anonymity": anonymity.for_petition(db=db, rt=rt, petition_id=petition.id, key=issuing_key)
        if issuing_key
        else None,
        **_log_context(db, rt, petition),
        "visibilities": [Visibility.public, Visibility.organizers],
        "responses": responses.responses(db=db, petition=petition),
        "response_labels": RESPONSE_LABELS,
        "commitment_labels": COMMITMENT_LABELS,
        "share": share.petition_row(rt=rt, petition=petition),
    }


def shared_page_context(request: Request, db: SessionDep, rt: RuntimeDep, petition: Petition) -> dict[str, object]:
    """What every reader of the petition page sees, its discussion's first page included: the context of the page's
    shared copy (app/petitions/page_cache.py), made by the route below or, for a member, before it
    (app/routes/petition_reader.py)."""
    context = _shared_context(db, rt, petition)
    if petition.state in VISIBLE_STATES:
        context.update(discussion_context(request=request, db=db, rt=rt, petition=petition, user=None))
    return context


def _reader_context(
    db: SessionDep,
    rt: RuntimeDep,
    petition: Petition,
    user: User | None,
    shared: Mapping[str, object],
    state: repository.ReaderState | None = None,
) -> dict[str, object]:
    """The reader's own part of the petition page: their signature, follow, token and, for organizers, their panel."""
    state = state or repository.reader_state(db=db, petition_id=petition.id, user=user)
    organizer = state.organizer
    own = db.get(Signature, state.signature_id) if state.signature_id else None
    issuing_key = shared["issuing_key"]
    receipt = (
        signature_log.leaf_hash(db=db, petition_id=petition.id, index=own.log_index)
        if own is not None and shared["log_checkpoint"] is not None
        else None
    )
    # Read only for the readers who see them: the organizers' panel, and the sign form's optional groups.
    signing = (
        user is not None
        and user.is_verified
        and own is None
        and petition.collect_attributes
        and petition.state is PetitionState.open
    )
    offered = groups.offered(db=db, rt=rt) if signing else {GroupKind.department: [], GroupKind.location: []}
    context: dict[str, object] = {
        "is_organizer": organizer,
        "following": state.following,
        "own_signature": own,
        "own_receipt": receipt.hex() if receipt else None,
        "organizers": service.organizer_accounts(db=db, petition=petition) if organizer else [],
        # Signed with a name and withdrew: the token stays spent, so the panel offers no anonymous signature.
        "token_burned": own is None and issuing_key is not None and state.token_burned,
        # Issued a token, neither spent nor forfeited: the server cannot tell whether this browser holds it, so the
        # panel says where it can be used and offers the forfeit explicitly (issue 19).
        "token_unspent": own is None
        and issuing_key is not None
        and petition.state is PetitionState.open
        and state.token_unspent,
        "departments": offered[GroupKind.department],
        "locations": offered[GroupKind.location],
    }
    if organizer and petition.state in (PetitionState.gathering_sponsors, PetitionState.draft):
        context["sponsor_url"] = rt.settings.base_url.rstrip("/") + service.sponsor_url(rt=rt, petition=petition)
        context["sponsors"] = service.sponsors(db=db, petition=petition)
        context["sponsor_share"] = share.sponsor_row(url=str(context["sponsor_url"]), petition=petition)
    return context


def _show_context(db: SessionDep, rt: RuntimeDep, petition: Petition, user: User | None) -> dict[str, object]:
    shared = _shared_context(db, rt, petition)
    return {**shared, **_reader_context(db, rt, petition, user, shared)}


@router.get("/petitions/{petition_id}", response_class=HTMLResponse)
@shared_when_signed_out
def show(request: Request, petition_id: Id, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    version = rt.page_versions.get(petition_id)  # before anything is read: a copy never predates its version
    petition = service.get_readable(db=db, rt=rt, petition_id=petition_id, user=user)
    state = repository.reader_state(db=db, petition_id=petition.id, user=user)

    def reader(page: Mapping[str, object]) -> dict[str, object]:
        discussion = page.get("discussion")
        return {
            **_reader_context(db, rt, petition, user, page, state),
            "reader_comments": comments.reader_nodes(db=db, nodes=discussion.nodes, viewer=user)
            if isinstance(discussion, comments.Page) and user is not None and state.in_discussion
            else [],
        }

    def whole() -> Response:
        shared_context = _shared_context(db, rt, petition)
        context = {**shared_context, **_reader_context(db, rt, petition, user, shared_context, state)}
        if petition.state in VISIBLE_STATES:
            context.update(discussion_context(request=request, db=db, rt=rt, petition=petition, user=user))
        return render(request, "petitions/show.html", context)

    kind = page_cache.reader_kind(user, organizer=state.organizer)
    if kind is None:  # controls all through the page (organizers, responders, moderators): rendered whole
        return whole()
    copies = page_cache.copies_of(request.app)
    page = page_cache.page(
        request=request,
        rt=rt,
        copies=copies,
        petition=petition,
        kind=kind,
        version=version,
        shared=lambda: shared_page_context(request, db, rt, petition),
        reader=reader,
    )
    return page or whole()


@router.get("/petitions/{petition_id}/live")
def live(
    request: Request,
    petition_id: Id,
    user: OptionalUser,
    petition: ReadablePetition,
    db: SessionDep,
    rt: RuntimeDep,
    after: str | None = Query(None, max_length=80),
) -> JSONResponse:
    """The open petition page's one poll (app/static/tally.js): its count and state and, given the discussion's
    newest place on the page (`after`), how many comments every reader sees arrived since (comments.js offers them).
    It was two polls, the petition's JSON and the discussion's count: 10,000 open pages sent 1,333 requests a
    second for them (docs/benchmarks.md). The same answer for every reader of a public petition, shared by their
    polls (app/core/livepolls.py)."""
    answer: dict[str, object] = {"signature_count": petition.signature_count, "state": petition.state.value}
    if after is not None:
        answer["new_comments"] = comments.count_newer(db=db, petition=petition, after=after)
    share_when_public(request, user=user, petition=petition, db=db, rt=rt)
    return JSONResponse(answer, headers={"Cache-Control": "private, no-cache"})


# The address in a QR code never changes; the poster's count may be a minute old, as the shared page's may.
QR_CACHE = {"Cache-Control": "public, max-age=86400"}
POSTER_CACHE = {"Cache-Control": "public, max-age=60"}


@router.get("/petitions/{petition_id}/qr.svg", response_class=Response)
def qr_code(request: Request, petition_id: Id, anyone: Anyone, db: SessionDep, rt: RuntimeDep) -> Response:
    """The petition's address as a QR code: the same for every reader, so any cache may keep it."""
    petition = share.get_shareable(db=db, rt=rt, petition_id=petition_id)
    url = share.public_url(rt=rt, petition_id=petition.id)
    label = translate(request, N_("QR code of the petition's address, %(url)s"), url=url)
    return Response(share.qr_svg(url, label), media_type="image/svg+xml", headers=QR_CACHE)


@router.get("/petitions/{petition_id}/poster.pdf", response_class=Response)
def poster_page(petition_id: Id, anyone: Anyone, db: SessionDep, rt: RuntimeDep) -> Response:
    """An A4 poster to print for a break room: the title, the ask, the QR code, today's count and the address."""
    petition = share.get_shareable(db=db, rt=rt, petition_id=petition_id)
    return Response(
        poster.poster(db=db, rt=rt, petition=petition),
        media_type="application/pdf",
        headers={**POSTER_CACHE, "Content-Disposition": f'inline; filename="petition-{petition.id}-poster.pdf"'},
    )


@router.get("/petitions/{petition_id}/versions", response_class=HTMLResponse)
def versions(
    request: Request, petition_id: Id, user: OptionalUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    history = service.versions(db=db, petition=petition)
    return render(
        request,
        "petitions/versions.html",
        {
            "petition": petition,
            "versions": history,
            "diffs": version_diffs(history),
            "backgrounds": {version.number: background_html(version.background) for version in history},
        },
    )


def _edit_context(petition: Petition, db: SessionDep) -> dict[str, object]:
    correcting = petition.state is not PetitionState.draft
    return {
        **_form_context(db),
        "petition": petition,
        "correcting": correcting,
        "action": f"/petitions/{petition.id}/{'correct' if correcting else 'edit'}",
        "heading": "Correct the petition" if correcting else "Edit your draft",
        "button": "Publish the correction" if correcting else "Save draft",
    }


@router.get("/petitions/{petition_id}/edit", response_class=HTMLResponse)
def edit_page(
    request: Request, petition_id: Id, user: Organizer, petition: OrganizedPetition, db: SessionDep
) -> Response:
    values = {
        "title": petition.title,
        "ask": petition.ask,
        "background": petition.background,
        "decision_maker": petition.decision_maker or "",
        "category": petition.category.slug,
        "deadline": petition.deadline.date().isoformat() if petition.deadline else "",
        "collect_attributes": petition.collect_attributes,
        "allow_anonymous": petition.allow_anonymous,
    }
    return render(request, "petitions/form.html", {**_edit_context(petition, db), "values": values})


@router.post("/petitions/{petition_id}/edit", response_class=HTMLResponse)
def edit(
    request: Request,
    petition_id: Id,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    try:
        service.require_draft(petition)  # before the fields: a published petition's form has no category to check
        service.update_draft(
            db=db,
            rt=rt,
            petition=petition,
            form=validate(schemas.PetitionDraft, fields, checks=service.draft_checks(db=db, rt=rt)),
        )
    except AppError as error:
        return form_error(request, "petitions/form.html", error, fields, _edit_context(petition, db))
    return redirect(request, f"/petitions/{petition.id}", N_("Draft saved."))


@router.post("/petitions/{petition_id}/correct", response_class=HTMLResponse)
def correct(
    request: Request,
    petition_id: Id,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    try:
        service.correct_text(
            db=db, rt=rt, petition=petition, actor=user, form=validate(schemas.PetitionCorrection, fields)
        )
    except AppError as error:
        return form_error(request, "petitions/form.html", error, fields, _edit_context(petition, db))
    return redirect(
        request,
        f"/petitions/{petition.id}/versions",
        translate(
            request,
            N_("Correction published as version %(version)s; signers and followers are told."),
            version=petition.version,
        ),
    )


@router.post("/petitions/{petition_id}/submit", response_class=HTMLResponse)
def submit(
    request: Request, petition_id: Id, user: Organizer, petition: OrganizedPetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    service.submit_for_sponsors(db=db, rt=rt, petition=petition, actor=user)
    return redirect(
        request,
        f"/petitions/{petition.id}",
        N_("Your petition's text is now frozen. Share the sponsor link with colleagues."),
    )


@router.get("/petitions/{petition_id}/sponsor/{token}", response_class=HTMLResponse)
def sponsor_page(
    request: Request, petition_id: Id, token: str, user: CurrentUser, db: SessionDep, rt: RuntimeDep
) -> Response:
    petition = service.get_or_404(db=db, petition_id=petition_id)
    service.check_sponsor_token(rt=rt, petition=petition, token=token)
    organizer = service.is_organizer(db=db, petition=petition, user=user)
    return render(
        request,
        "petitions/sponsor.html",
        {
            "petition": petition,
            "token": token,
            "background_html": background_html(petition.background),
            "sponsors_required": organization.current(db=db, rt=rt).sponsors_required,
            "is_organizer": organizer,
            "sponsor_share": share.sponsor_row(
                url=rt.settings.base_url.rstrip("/") + service.sponsor_url(rt=rt, petition=petition), petition=petition
            )
            if organizer
            else None,
            "already": user.id in {sponsor.id for sponsor in service.sponsors(db=db, petition=petition)},
        },
    )


@router.post("/petitions/{petition_id}/sponsor/{token}", response_class=HTMLResponse)
def sponsor(
    request: Request, petition_id: Id, token: str, user: CurrentUser, db: SessionDep, rt: RuntimeDep
) -> Response:
    petition = service.get_or_404(db=db, petition_id=petition_id)
    service.sponsor(db=db, rt=rt, petition=petition, token=token, user=user)
    if petition.state is PetitionState.gathering_sponsors:
        return redirect(
            request, f"/petitions/{petition.id}/sponsor/{token}", N_("Thank you: you are a sponsor of this petition.")
        )
    return redirect(
        request,
        f"/petitions/{petition.id}/sponsor/{token}",
        N_("Thank you: with your sponsorship the petition has all it needs and goes to the moderators."),
    )


@router.post("/petitions/{petition_id}/organizers", response_class=HTMLResponse)
def add_organizer(
    request: Request,
    petition_id: Id,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    try:
        invite = validate(schemas.OrganizerInvite, fields)
        service.invite_organizer(db=db, rt=rt, petition=petition, actor=user, raw_email=invite.email)
    except AppError as error:
        return refused(request, f"/petitions/{petition_id}#organizers", error)
    return redirect(
        request,
        f"/petitions/{petition.id}#organizers",
        N_(
            "We emailed that address: an invitation to organize if it has an account here, or how to join first. "
            "They become an organizer when they accept."
        ),
    )


@router.get("/petitions/{petition_id}/organizers/invitations/{token}", response_class=HTMLResponse)
def organizer_invitation_page(
    request: Request, petition_id: Id, token: str, user: CurrentUser, db: SessionDep, rt: RuntimeDep
) -> Response:
    petition = service.get_or_404(db=db, petition_id=petition_id)
    service.organizer_invitation(rt=rt, petition=petition, user=user, token=token)
    return render(
        request,
        "petitions/organizer_invitation.html",
        {"petition": petition, "token": token, "already": service.is_organizer(db=db, petition=petition, user=user)},
    )


@router.post("/petitions/{petition_id}/organizers/invitations/{token}", response_class=HTMLResponse)
def accept_organizer_invitation(
    request: Request, petition_id: Id, token: str, user: CurrentUser, db: SessionDep, rt: RuntimeDep
) -> Response:
    petition = service.get_or_404(db=db, petition_id=petition_id)
    service.accept_organizer_invitation(db=db, rt=rt, petition=petition, user=user, token=token)
    return redirect(request, f"/petitions/{petition.id}#organizers", N_("You now organize this petition."))


@router.post("/petitions/{petition_id}/organizers/{user_id}/remove", response_class=HTMLResponse)
def remove_organizer(
    request: Request, petition_id: Id, user_id: Id, user: Organizer, petition: OrganizedPetition, db: SessionDep
) -> Response:
    service.remove_organizer(db=db, petition=petition, actor=user, user_id=user_id)
    if user_id == user.id:
        return redirect(request, f"/petitions/{petition.id}", N_("You no longer organize this petition."))
    return redirect(request, f"/petitions/{petition.id}#organizers", N_("Organizer removed."))


@router.post("/petitions/{petition_id}/updates", response_class=HTMLResponse)
def post_update(
    request: Request,
    petition_id: Id,
    user: Organizer,
    petition: OrganizedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    try:
        service.post_update(db=db, rt=rt, petition=petition, actor=user, form=validate(schemas.UpdateCreate, fields))
    except AppError as error:
        return form_error(request, "petitions/show.html", error, fields, _show_context(db, rt, petition, user))
    return redirect(request, f"/petitions/{petition.id}#updates", N_("Update posted and on its way to subscribers."))


@router.post("/petitions/{petition_id}/close", response_class=HTMLResponse)
def close(
    request: Request, petition_id: Id, user: Organizer, petition: OrganizedPetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    service.close(db=db, rt=rt, petition=petition, actor=user, reason="The organizers closed it.")
    return redirect(request, f"/petitions/{petition.id}", N_("The petition is closed; its signatures stay counted."))


@router.post("/petitions/{petition_id}/follow", response_class=HTMLResponse)
def follow(
    request: Request, petition_id: Id, user: CurrentUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    added = service.follow(db=db, rt=rt, petition=petition, user=user)
    return redirect(
        request,
        f"/petitions/{petition.id}",
        N_("You follow this petition: updates and responses come to you by email.")
        if added
        else N_("You already follow this petition."),
        "success" if added else "info",
    )


@router.post("/petitions/{petition_id}/unfollow", response_class=HTMLResponse)
def unfollow(
    request: Request, petition_id: Id, user: CurrentUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    service.unfollow(db=db, petition=petition, user=user)
    return redirect(request, f"/petitions/{petition.id}", N_("You no longer follow this petition."))
