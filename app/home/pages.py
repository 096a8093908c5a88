"""The home page and the health endpoints."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.core.policy import Anyone, OptionalUser
from app.core.templating import render

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request, user: OptionalUser) -> Response:
    return render(request, "home/index.html")


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
