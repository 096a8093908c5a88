"""The wallet page: what this device holds, the recovery code, and the ways to bring the wallet to another device
(wallet-spec section 4). Everything about the wallet itself happens in the browser (app/static/wallet-page.js):
the server never sees the secret, so it renders only the frame and the words that work without JavaScript."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.core.routing import UnitOfWorkRoute
from app.core.templating import render
from app.routes.policy import CurrentUser

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)


@router.get("/wallet", response_class=HTMLResponse)
def wallet_page(request: Request, user: CurrentUser) -> Response:
    return render(request, "wallet/index.html", {})
