"""JSON API for petition discussions."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from app.comments import anonymous, moderation, repository, schemas, service
from app.core.cookieless import ANONYMOUS_COMMENTS_PATH
from app.core.database import SessionDep
from app.core.errors import errors
from app.core.pagecache import shared_when_signed_out
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import Runtime, RuntimeDep
from app.core.types import Id
from app.models.accounts import User
from app.models.comments import Comment
from app.routes.policy import Anyone, CurrentUser, ModeratedPetition, Moderator, OptionalUser, ReadablePetition

router = APIRouter(prefix="/api/v1", tags=["comments"], route_class=UnitOfWorkRoute)

CURSOR = Query(None, max_length=80, description="next_cursor from the previous page.")


def _one(db: SessionDep, rt: Runtime, comment: Comment, user: User | None) -> schemas.CommentRead:
    (node,) = repository.build(db=db, rt=rt, roots=[comment], viewer=user)
    return schemas.CommentRead.of(node)


@router.get(
    "/petitions/{petition_id}/comments",
    response_model=schemas.CommentPage,
    summary="A page of top-level comments with their first replies",
)
@shared_when_signed_out
def list_comments(
    request: Request,
    petition_id: Id,
    user: OptionalUser,
    petition: ReadablePetition,
    db: SessionDep,
    rt: RuntimeDep,
    sort: schemas.CommentSort = schemas.CommentSort.top,
    cursor: str | None = CURSOR,
    limit: int = Query(repository.PAGE_SIZE, ge=1, le=100),
) -> schemas.CommentPage:
    listing = repository.page(db=db, rt=rt, petition=petition, sort=sort, cursor=cursor, viewer=user, limit=limit)
    return schemas.CommentPage.of(
        listing.nodes,
        petition=petition,
        next_cursor=listing.next_cursor,
        accepting_comments=service.closed_reason(petition) is None,
    )


@router.post(
    "/petitions/{petition_id}/comments",
    responses=errors(409, 429),
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.CommentRead,
    summary="Comment, or reply to a comment",
)
def post_comment(
    request: Request,
    petition_id: Id,
    body: schemas.CommentCreate,
    user: CurrentUser,
    petition: ReadablePetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> schemas.CommentRead:
    comment = service.create(db=db, rt=rt, petition=petition, author=user, form=body)
    return _one(db, rt, comment, user)


@router.get("/comments/{comment_id}", response_model=schemas.CommentRead, summary="One comment with its first replies")
def get_comment(
    request: Request, comment_id: Id, user: OptionalUser, db: SessionDep, rt: RuntimeDep
) -> schemas.CommentRead:
    comment, _petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    return _one(db, rt, comment, user)


@router.get(
    "/comments/{comment_id}/replies",
    response_model=schemas.CommentPage,
    summary="A page of a comment's replies, oldest first",
)
def list_replies(
    request: Request, comment_id: Id, user: OptionalUser, db: SessionDep, rt: RuntimeDep, cursor: str | None = CURSOR
) -> schemas.CommentPage:
    comment, petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    node, next_cursor = repository.replies(
        db=db, rt=rt, comment=comment, after=repository.reply_cursor(cursor), viewer=user
    )
    return schemas.CommentPage.of(
        node.replies,
        petition=petition,
        next_cursor=next_cursor,
        accepting_comments=service.closed_reason(petition) is None,
    )


@router.patch(
    "/comments/{comment_id}", responses=errors(409), response_model=schemas.CommentRead, summary="Edit your comment"
)
def edit_comment(
    request: Request, comment_id: Id, body: schemas.CommentEdit, user: CurrentUser, db: SessionDep, rt: RuntimeDep
) -> schemas.CommentRead:
    comment, petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    service.edit(db=db, rt=rt, petition=petition, comment=comment, user=user, form=body)
    return _one(db, rt, comment, user)


@router.delete(
    "/comments/{comment_id}",
    responses=errors(409),
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete your comment (its replies stay)",
)
def delete_comment(request: Request, comment_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> Response:
    comment, _petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    service.delete_by_author(db=db, comment=comment, user=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/comments/{comment_id}/history",
    response_model=list[schemas.RevisionRead],
    summary="Earlier versions of a comment edited after its edit window, newest first",
)
def comment_history(comment_id: Id, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> list[object]:
    comment, _petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    return list(service.history(db=db, comment=comment))


@router.post(
    "/comments/{comment_id}/endorsement",
    responses=errors(409),
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.CommentRead,
    summary="Endorse a comment (once per account)",
)
def endorse(request: Request, comment_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> schemas.CommentRead:
    comment, petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    service.endorse(db=db, petition=petition, comment=comment, user=user)
    return _one(db, rt, comment, user)


@router.delete(
    "/comments/{comment_id}/endorsement",
    responses=errors(409),
    response_model=schemas.CommentRead,
    summary="Withdraw your endorsement",
)
def withdraw_endorsement(
    request: Request, comment_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep
) -> schemas.CommentRead:
    comment, petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    service.withdraw_endorsement(db=db, petition=petition, comment=comment, user=user)
    return _one(db, rt, comment, user)


@router.post(
    "/comments/{comment_id}/flags",
    responses=errors(409),
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.FlagAccepted,
    summary="Flag a comment for the moderators",
)
def flag(
    comment_id: Id, body: schemas.FlagCreate, user: CurrentUser, db: SessionDep, rt: RuntimeDep
) -> schemas.FlagAccepted:
    comment, _petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=user)
    service.flag(db=db, rt=rt, comment=comment, user=user, form=body)
    return schemas.FlagAccepted(message="Thank you: moderators will look at it.")


@router.get(
    "/moderation/comments",
    response_model=list[schemas.FlaggedRead],
    summary="Flagged comments waiting for a decision (moderators)",
)
def flagged(moderator: Moderator, db: SessionDep, rt: RuntimeDep) -> list[schemas.FlaggedRead]:
    return [
        schemas.FlaggedRead.of(
            repository.Node(item.comment, collapsed=service.is_collapsed(rt=rt, comment=item.comment)), item.flags
        )
        for item in moderation.queue(db=db)
    ]


@router.post(
    "/moderation/comments/{comment_id}/hide",
    responses=errors(409),
    response_model=schemas.CommentRead,
    summary="Hide a comment; the public reason is shown in its place (moderators)",
)
def hide(
    request: Request,
    comment_id: Id,
    body: schemas.ModerationReason,
    moderator: Moderator,
    db: SessionDep,
    rt: RuntimeDep,
) -> schemas.CommentRead:
    comment, _petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=moderator)
    moderation.hide(db=db, rt=rt, comment=comment, moderator=moderator, reason=body.reason)
    return _one(db, rt, comment, moderator)


@router.post(
    "/moderation/comments/{comment_id}/restore",
    responses=errors(409),
    response_model=schemas.CommentRead,
    summary="Show a hidden comment again, or keep a flagged one (moderators)",
)
def restore(
    request: Request, comment_id: Id, moderator: Moderator, db: SessionDep, rt: RuntimeDep
) -> schemas.CommentRead:
    comment, _petition = service.get_readable(db=db, rt=rt, comment_id=comment_id, user=moderator)
    moderation.restore(db=db, rt=rt, comment=comment, moderator=moderator)
    return _one(db, rt, comment, moderator)


@router.put(
    "/moderation/petitions/{petition_id}/comments-lock",
    responses=errors(409),
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Lock a petition's discussion, with a public reason (moderators)",
)
def lock(
    petition_id: Id,
    body: schemas.ModerationReason,
    moderator: Moderator,
    petition: ModeratedPetition,
    db: SessionDep,
    rt: RuntimeDep,
) -> Response:
    moderation.lock(db=db, rt=rt, petition=petition, moderator=moderator, reason=body.reason)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/moderation/petitions/{petition_id}/comments-lock",
    responses=errors(409),
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unlock a petition's discussion (moderators)",
)
def unlock(
    petition_id: Id, moderator: Moderator, petition: ModeratedPetition, db: SessionDep, rt: RuntimeDep
) -> Response:
    moderation.unlock(db=db, rt=rt, petition=petition, moderator=moderator)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/me/notifications", response_model=schemas.NotificationPreferences, summary="Choose which emails you receive"
)
def preferences(
    body: schemas.NotificationPreferences, user: CurrentUser, db: SessionDep
) -> schemas.NotificationPreferences:
    service.set_preferences(db=db, user=user, form=body)
    return schemas.NotificationPreferences(comment_replies=user.notify_comment_replies)


# -- anonymous comments: no cookie read, no CSRF token (nothing to borrow), no log line (app/core/web.py) --------

ANONYMOUS = ANONYMOUS_COMMENTS_PATH.removeprefix(router.prefix)


@router.post(
    ANONYMOUS,
    responses=errors(404, 409, 429),
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.AnonymousCommentAccepted,
    summary="Comment anonymously with the petition's discussion credential: send without cookies",
)
def post_anonymous(
    body: schemas.AnonymousCommentCreate, anyone: Anyone, db: SessionDep, rt: RuntimeDep
) -> schemas.AnonymousCommentAccepted:
    message, signature = body.decoded()
    item = anonymous.submit(
        db=db,
        rt=rt,
        petition_id=body.petition_id,
        message=message,
        signature=signature,
        body=body.body,
        parent_id=body.parent_id,
    )
    return schemas.AnonymousCommentAccepted(
        status="queued", publish_within_seconds=anonymous.publish_within_seconds(rt), pseudonym=item.pseudonym
    )


@router.post(
    ANONYMOUS + "/{comment_id}/edit",
    responses=errors(403, 404, 409, 429),
    response_model=schemas.ChangeAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Edit your anonymous comment with the credential that wrote it: send without cookies",
)
def edit_anonymous(
    comment_id: Id,
    body: schemas.AnonymousCommentEdit,
    anyone: Anyone,
    db: SessionDep,
    rt: RuntimeDep,
    response: Response,
) -> schemas.ChangeAccepted:
    message, signature = body.decoded()
    queued = anonymous.edit(db=db, rt=rt, comment_id=comment_id, message=message, signature=signature, body=body.body)
    return _change_answer(rt, queued, response)


@router.post(
    ANONYMOUS + "/{comment_id}/delete",
    responses=errors(403, 404, 409),
    response_model=schemas.ChangeAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Delete your anonymous comment with the credential that wrote it: send without cookies",
)
def delete_anonymous(
    comment_id: Id,
    body: schemas.AnonymousCommentDelete,
    anyone: Anyone,
    db: SessionDep,
    rt: RuntimeDep,
    response: Response,
) -> schemas.ChangeAccepted:
    queued = anonymous.delete(db=db, rt=rt, comment_id=comment_id, message=body.decoded_message())
    return _change_answer(rt, queued, response)


def _change_answer(rt: Runtime, queued: bool, response: Response) -> schemas.ChangeAccepted:
    """202 with the wait when the change waits for the batch; 200 when it was applied at once (batching off)."""
    if not queued:
        response.status_code = status.HTTP_200_OK
        return schemas.ChangeAccepted(status="done", publish_within_seconds=0.0)
    return schemas.ChangeAccepted(status="queued", publish_within_seconds=anonymous.publish_within_seconds(rt))
