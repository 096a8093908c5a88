"""The home page and the health endpoints."""

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.ballots import service as ballots
from app.core.database import SessionDep
from app.core.i18n import N_
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.templating import render
from app.petitions import repository
from app.petitions import service as petitions
from app.petitions.schemas import ListFilter, ListSort
from app.routes.policy import Anyone, OptionalUser

router = APIRouter(route_class=UnitOfWorkRoute)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    petitions.close_expired(db=db, rt=rt)
    now = rt.clock.now()
    trending = repository.list_petitions(
        db=db, now=now, state_filter=ListFilter.open, sort=ListSort.trending, per_page=5
    )
    # Trending means signed in the last 24 hours: a quiet day lists nothing rather than every open petition.
    trending = replace(
        trending, petitions=[petition for petition in trending.petitions if trending.recent_counts.get(petition.id)]
    )
    sections = [
        ("trending", N_("Trending today"), "/petitions?sort=trending", trending),
        (
            "awaiting",
            N_("Waiting for leadership's response"),
            "/petitions?state=awaiting_response",
            repository.list_petitions(
                db=db, now=now, state_filter=ListFilter.awaiting_response, sort=ListSort.most_signed, per_page=5
            ),
        ),
        (
            "closing",
            N_("Closing soon"),
            "/petitions?sort=closing_soon",
            repository.list_petitions(
                db=db, now=now, state_filter=ListFilter.open, sort=ListSort.closing_soon, per_page=5
            ),
        ),
    ]
    return render(
        request,
        "home/index.html",
        {
            "sections": sections,
            "response_threshold": petitions.response_threshold(db=db, rt=rt),
            # The organization-wide polls open now (issue #25), closing soonest first.
            "polls": ballots.list_open(db=db, rt=rt, pulse_only=True, limit=5),
        },
    )


@router.get("/healthz", tags=["health"], summary="The process is up")
def healthz(anyone: Anyone) -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], summary="The database answers")
def readyz(request: Request, anyone: Anyone) -> Response:
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})
