"""The development mailbox (mail the outbox holds, readable in the browser when there is no SMTP server), and the
pages behind every mail's unsubscribe link."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.database import SessionDep
from app.core.errors import NotFound
from app.core.i18n import N_
from app.core.pages import FormFields
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.templating import redirect, render
from app.core.types import Id
from app.mail import unsubscribe
from app.models.mail import OutboxMessage
from app.models.mail_kinds import KIND_LABELS, MailKind
from app.petitions import mail_preferences, repository
from app.routes.policy import CurrentUser, DevelopmentOnly, OptionalUser

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)


@router.get("/dev/mailbox", response_class=HTMLResponse)
def mailbox(request: Request, viewer: DevelopmentOnly, db: SessionDep) -> Response:
    messages = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(100)).all()
    return render(request, "dev/mailbox.html", {"messages": messages})


@router.get("/dev/mailbox/{message_id}", response_class=HTMLResponse)
def mailbox_message(request: Request, message_id: Id, viewer: DevelopmentOnly, db: SessionDep) -> Response:
    message = db.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(N_("There is no such message in the mailbox."))
    return render(request, "dev/message.html", {"message": message})


def _unsubscribe_context(db: Session, subscription: unsubscribe.Subscription, token: str) -> dict[str, object]:
    # A link outlives the petition's being public (moderators may hide it since): whoever holds the link (a forwarded
    # mail, a shared inbox) learns its title only while everyone may read it.
    petition = subscription.petition
    public = petition is not None and repository.is_readable_to_everyone(db=db, petition_id=petition.id)
    return {
        "kind_label": KIND_LABELS[subscription.kind],
        "petition": petition,
        "petition_public": public,
        "action": f"/unsubscribe/{token}",
        "already_off": unsubscribe.is_off(db=db, subscription=subscription),
    }


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str, viewer: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    # Mail scanners open every link: this page only asks; the button (or a mail client's one-click POST) stops it.
    subscription = unsubscribe.read(db=db, rt=rt, token=token)
    return render(request, "mail/unsubscribe.html", _unsubscribe_context(db, subscription, token))


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_now(request: Request, token: str, viewer: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    """RFC 8058's one-click POST (body `List-Unsubscribe=One-Click`, no cookies) and the page's button alike."""
    subscription = unsubscribe.read(db=db, rt=rt, token=token)
    petition_id = subscription.petition.id if subscription.petition else None
    if subscription.kind is MailKind.news:
        assert petition_id is not None
        unsubscribe.stop_news(db=db, rt=rt, user=subscription.user, petition_id=petition_id)
    else:
        unsubscribe.turn_off(db=db, rt=rt, user=subscription.user, kind=subscription.kind, petition_id=petition_id)
    return render(request, "mail/unsubscribed.html", _unsubscribe_context(db, subscription, token))


@router.post("/account/petitions/{petition_id}/mail", response_class=HTMLResponse)
def save_petition_mail(
    request: Request, petition_id: Id, user: CurrentUser, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    mail_preferences.save(
        db=db,
        rt=rt,
        user=user,
        petition_id=petition_id,
        wanted={kind.value for kind in MailKind if fields.get(f"mail_{kind.value}") == "1"},
    )
    return redirect(
        request, f"/account#petition-mail-{petition_id}", N_("Your mail settings for this petition are saved.")
    )


@router.post("/account/poll-mail", response_class=HTMLResponse)
def save_poll_mail(request: Request, user: CurrentUser, db: SessionDep, rt: RuntimeDep, fields: FormFields) -> Response:
    """The account page's switch for mail about polls opening (issue #25): the way back after its link turned it
    off, and a way to turn it off without one."""
    if fields.get("polls") == "1":
        unsubscribe.turn_on(db=db, user=user, kind=MailKind.polls, petition_id=None)
    else:
        unsubscribe.turn_off(db=db, rt=rt, user=user, kind=MailKind.polls, petition_id=None)
    return redirect(request, "/account#poll-mail", N_("Your mail settings for polls are saved."))
