"""The page that links a device: on a device that holds the wallet it shows a code, on one that does not it takes
the code. Both halves run in the browser (app/static/wallet-link.js): the code must never reach the server, so
nothing of it can be drawn or checked here. Without JavaScript the page says what to do instead."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.core.pages import safe_next
from app.core.routing import UnitOfWorkRoute
from app.core.templating import render
from app.routes.policy import CurrentUser

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)


@router.get("/wallet/link", response_class=HTMLResponse)
def link_page(request: Request, user: CurrentUser, next: str | None = None) -> Response:
    # Where the new device goes once it holds the wallet: the petition it came from, or the wallet page.
    return render(request, "wallet/link.html", {"next": safe_next(next, "/wallet")})
