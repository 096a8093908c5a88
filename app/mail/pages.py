"""The development mailbox: mail the outbox holds, readable in the browser when there is no SMTP server."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from app.core.database import SessionDep
from app.core.errors import NotFound
from app.core.i18n import N_
from app.core.policy import DevelopmentOnly
from app.core.templating import render
from app.core.types import Id
from app.core.routing import UnitOfWorkRoute
from app.mail.models import OutboxMessage

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
