"""Discussion pages: a petition's comments, one comment's thread, editing, flags, history and moderation."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from app.comments import moderation, repository, schemas, service
from app.core.database import SessionDep
from app.core.errors import AppError
from app.core.forms import validate
from app.core.i18n import N_
from app.core.pagecache import shared_when_signed_out
from app.core.pages import FormFields, form_error, refused
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import Runtime, RuntimeDep
from app.core.templating import redirect, render
from app.core.types import Id
from app.models.accounts import User
from app.models.comments import FLAG_REASONS, Comment
from app.models.petitions import Petition
from app.routes.policy import (
    CurrentUser,
    ModeratedPetition,
    Moderator,
    OptionalUser,
    ReadablePetition,
    share_when_public,
)

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)

# The compose form's box is "comment-body" (the page has other bodies); the thread and the anonymous choice are
# not fields a person can correct, so their messages are listed without a link.
COMPOSE_FIELD_IDS = {"body": "comment-body", "parent_id": None, "anonymous": None}

SORT_LABELS = {
    schemas.CommentSort.top: N_("Top"),
    schemas.CommentSort.newest: N_("Newest"),
    schemas.CommentSort.endorsed: N_("Most endorsed"),
}
CURSOR = Query(None, max_length=80)


def discussion_context(
    *,
    request: Request,
    db: SessionDep,
    rt: Runtime,
    petition: Petition,
    user: User | None,
    sort: schemas.CommentSort = schemas.CommentSort.top,
    cursor: str | None = None,
) -> dict[str, object]:
    """What templates/comments/_discussion.html needs; the petition page includes it too."""
    closed = service.closed_reason(petition)
    return {
        "discussion": repository.page(db=db, rt=rt, petition=petition, sort=sort, cursor=cursor, viewer=user),
        "top_concerns": repository.top_concerns(db=db, petition=petition) if not cursor else [],
        "sort": sort,
        "sort_labels": SORT_LABELS,
        "accepting": closed is None,
        "closed_reason": closed,
        "latest_comment": repository.latest(db=db, petition=petition),
        "poll_milliseconds": int(rt.settings.comment_poll_seconds * 1000),
    }


def _comment_target(comment: Comment) -> str:
    return f"/comments/{comment.id}"


@router.get("/petitions/{petition_id}/comments", response_class=HTMLResponse)
@shared_when_signed_out
def discussion(
    request: Request,
    petition_id: Id,
    user: OptionalUser,
    petition: ReadablePetition,
    db: SessionDep,
    rt: RuntimeDep,
    sort: schemas.CommentSort = schemas.CommentSort.top,
    cursor: str | None = CURSOR,
) -> Response:
    return render(
        request,
        "comments/discussion.html",
        {
            "petition": petition,
            "cursor": cursor,
            **discussion_context(request=request, db=db, rt=rt, petition=petition, user=user, sort=sort, cursor=cursor),
        },
    )


@router.get("/petitions/{petition_id}/comments/new", response_class=HTMLResponse)
def new_comments(
    request: Request,
    petition_id: Id,
    user: OptionalUser,
    petition: ReadablePetition,
    db: SessionDep,
    rt: RuntimeDep,
    after: str = Query("", max_length=80),
) -> Response:
    """For live updates: the top-level comments posted since `after`, as list items, and how many arrived."""
    count, rows, latest = repository.newer_than(db=db, petition=petition, after=after)
    nodes = repository.build(db=db, rt=rt, roots=rows, viewer=user, first_level_limit=0) if rows else []
    return render(
        request,
        "comments/_new.html",
        {"petition": petition, "nodes": nodes, "accepting": service.closed_reason(petition) is None},
        headers={"X-New-Comments": str(count), "X-Latest-Comment": latest, "Cache-Control": "no-store"},
    )


@router.get("/petitions/{petition_id}/comments/count")
def new_comment_count(
    request: Request,
    petition_id: Id,
    user: OptionalUser,
    petition: ReadablePetition,
    db: SessionDep,
    rt: RuntimeDep,
    after: str = Query("", max_length=80),
) -> JSONResponse:
    """For live updates: how many comments every reader sees arrived since `after`, nothing else. The page asks
    for the comments themselves (`new_comments`) when its reader wants them: most pages show the discussion by "top"
    and used only the count, rendered for each reader at ~10 ms of CPU a poll (docs/benchmarks.md)."""
    count = repository.count_newer(db=db, petition=petition, after=after)
    share_when_public(request, user=user, petition=petition, db=db, rt=rt)
    return JSONResponse({"count": count}, headers={"Cache-Control": "private, no-cache"})


@router.post("/petitions/{petition_id}/comments", response_class=HTMLResponse)
def post_comment(
    request: Request,
    petition_id: Id,
    user: CurrentUser,
    petition: ReadablePetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    try:
        form = validate(schemas.CommentCreate, fields)
        comment = service.create(db=db, rt=rt, petition=petition, author=user, form=form)
    except AppError as error:
        parent_id = repository.parse_id(fields.get("parent_id"))
        parent = (
            db.get(Comment, parent_id, options=list(repository.LOAD), populate_existing=True) if parent_id else None
        )
        if parent is not None and parent.petition_id == petition.id:
            return form_error(
                request,
                "comments/thread.html",
                error,
                fields,
                {**_thread_context(request, db, rt, parent, petition, user, None), "field_ids": COMPOSE_FIELD_IDS},
            )
        return form_error(
            request,
            "comments/discussion.html",
            error,
            fields,
            {
                "petition": petition,
                "cursor": None,
                "field_ids": COMPOSE_FIELD_IDS,
                **discussion_context(request=request, db=db, rt=rt, petition=petition, user=user),
            },
        )
    message = N_("Your comment is posted.")
    target = (
        f"/comments/{comment.parent_id}#comment-{comment.id}"
        if comment.parent_id
        else (f"/petitions/{petition.id}/comments?sort=newest#comment-{comment.id}")
    )
    return redirect(request, target, message)


def _thread_context(
    request: Request,
    db: SessionDep,
    rt: Runtime,
    comment: Comment,
    petition: Petition,
    user: User | None,
    cursor: str | None,
) -> dict[str, object]:
    after = repository.reply_cursor(cursor)
    node, next_cursor = repository.replies(db=db, rt=rt, comment=comment, after=after, viewer=user)
    closed = service.closed_reason(petition)
    parent = db.get(Comment, comment.parent_id) if comment.parent_id else None
    return {
        "petition": petition,
        "node": node,
        "comment": comment,
        "parent": comment,
        "up": parent,
        "next_cursor": next_cursor,
        "accepting": closed is None,
        "closed_reason": closed,
    }


@router.get("/comments/{comment_id}", response_class=HTMLResponse)
def thread(
    request: Request, comment_id: Id, user: OptionalUser, db: SessionDep, rt: RuntimeDep, cursor: str | None = CURSOR
) -> Response:
    comment, petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    return render(request, "comments/thread.html", _thread_context(request, db, rt, comment, petition, user, cursor))


def _editable(request: Request, db: SessionDep, rt: Runtime, comment_id: int, user: User) -> tuple[Comment, Petition]:
    comment, petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    service.require_author(comment, user)
    return comment, petition


@router.get("/comments/{comment_id}/edit", response_class=HTMLResponse)
def edit_page(request: Request, comment_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> Response:
    comment, petition = _editable(request, db, rt, comment_id, user)
    return render(
        request,
        "comments/edit.html",
        {
            "comment": comment,
            "petition": petition,
            "values": {"body": comment.body},
            "edit_minutes": rt.settings.comment_edit_minutes,
            "closed_reason": service.closed_reason(petition),
        },
    )


@router.post("/comments/{comment_id}/edit", response_class=HTMLResponse)
def edit(
    request: Request, comment_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    comment, petition = _editable(request, db, rt, comment_id, user)
    try:
        service.edit(
            db=db, rt=rt, petition=petition, comment=comment, user=user, form=validate(schemas.CommentEdit, fields)
        )
    except AppError as error:
        return form_error(
            request,
            "comments/edit.html",
            error,
            fields,
            {
                "comment": comment,
                "petition": petition,
                "closed_reason": service.closed_reason(petition),
                "edit_minutes": rt.settings.comment_edit_minutes,
            },
        )
    return redirect(request, f"/comments/{comment.id}", N_("Your comment is updated."))


@router.post("/comments/{comment_id}/delete", response_class=HTMLResponse)
def delete(request: Request, comment_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> Response:
    comment, _petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    try:
        service.delete_by_author(db=db, comment=comment, user=user)
    except AppError as error:
        return refused(request, _comment_target(comment), error)
    return redirect(request, f"/comments/{comment.id}", N_("Your comment is deleted. Replies to it stay."))


@router.post("/comments/{comment_id}/endorse", response_class=HTMLResponse)
def endorse(
    request: Request, comment_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    comment, petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    back = f"/comments/{comment.id}"
    try:
        if fields.get("endorse", "1") == "0":
            service.withdraw_endorsement(db=db, petition=petition, comment=comment, user=user)
            message = "Endorsement withdrawn."
        else:
            service.endorse(db=db, petition=petition, comment=comment, user=user)
            message = "You endorse this comment."
    except AppError as error:
        return refused(request, back, error)
    return redirect(request, back, message)


@router.get("/comments/{comment_id}/flag", response_class=HTMLResponse)
def flag_page(request: Request, comment_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> Response:
    comment, petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    return render(request, "comments/flag.html", {"comment": comment, "petition": petition, "reasons": FLAG_REASONS})


@router.post("/comments/{comment_id}/flag", response_class=HTMLResponse)
def flag(
    request: Request, comment_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    comment, petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    try:
        service.flag(db=db, rt=rt, comment=comment, user=user, form=validate(schemas.FlagCreate, fields))
    except AppError as error:
        return form_error(
            request,
            "comments/flag.html",
            error,
            fields,
            {"comment": comment, "petition": petition, "reasons": FLAG_REASONS},
        )
    return redirect(request, f"/comments/{comment.id}", N_("Thank you: moderators will look at it."))


@router.get("/comments/{comment_id}/history", response_class=HTMLResponse)
def history(request: Request, comment_id: Id, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    comment, petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    return render(
        request,
        "comments/history.html",
        {"comment": comment, "petition": petition, "revisions": service.history(db=db, comment=comment)},
    )


@router.get("/moderation/comments", response_class=HTMLResponse)
def queue(request: Request, moderator: Moderator, db: SessionDep, rt: RuntimeDep) -> Response:
    return render(
        request,
        "moderation/comments.html",
        {
            "flagged": moderation.queue(db=db),
            "reason_label": moderation.reason_label,
            "collapse_flags": rt.settings.comment_collapse_flags,
        },
    )


def _back_to(fields: dict[str, str], default: str) -> str:
    return "/moderation/comments" if fields.get("from") == "queue" else default


@router.post("/moderation/comments/{comment_id}/hide", response_class=HTMLResponse)
def hide(
    request: Request, comment_id: Id, moderator: Moderator, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    comment, _petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=moderator)
    back = _back_to(fields, f"/comments/{comment.id}")
    try:
        moderation.hide(
            db=db, rt=rt, comment=comment, moderator=moderator, reason=validate(schemas.ModerationReason, fields).reason
        )
    except AppError as error:
        return refused(request, back, error)
    return redirect(request, back, N_("Comment hidden; your reason is shown in its place."))


@router.post("/moderation/comments/{comment_id}/restore", response_class=HTMLResponse)
def restore(
    request: Request, comment_id: Id, moderator: Moderator, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    comment, _petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=moderator)
    back = _back_to(fields, f"/comments/{comment.id}")
    try:
        moderation.restore(db=db, rt=rt, comment=comment, moderator=moderator)
    except AppError as error:
        return refused(request, back, error)
    return redirect(request, back, N_("Comment shown; its flags are answered."))


@router.post("/moderation/petitions/{petition_id}/comments/lock", response_class=HTMLResponse)
def lock(
    request: Request,
    petition_id: Id,
    moderator: Moderator,
    petition: ModeratedPetition,
    db: SessionDep,
    rt: RuntimeDep,
    fields: FormFields,
) -> Response:
    back = f"/petitions/{petition.id}/comments"
    try:
        moderation.lock(
            db=db,
            rt=rt,
            petition=petition,
            moderator=moderator,
            reason=validate(schemas.ModerationReason, fields).reason,
        )
    except AppError as error:
        return refused(request, back, error)
    return redirect(request, back, N_("Discussion locked; your reason is shown above it."))


@router.post("/moderation/petitions/{petition_id}/comments/unlock", response_class=HTMLResponse)
def unlock(
    request: Request, petition_id: Id, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    back = f"/petitions/{petition.id}/comments"
    try:
        moderation.unlock(db=db, rt=rt, petition=petition, moderator=moderator)
    except AppError as error:
        return refused(request, back, error)
    return redirect(request, back, N_("Discussion unlocked."))


@router.post("/account/notifications", response_class=HTMLResponse)
def preferences(request: Request, user: CurrentUser, db: SessionDep, fields: FormFields) -> Response:
    # An unticked checkbox sends nothing: its absence means "off".
    form = validate(schemas.NotificationPreferences, {"comment_replies": fields.get("comment_replies", "0")})
    service.set_preferences(db=db, user=user, form=form)
    return redirect(request, "/account", N_("Email preferences saved."))
