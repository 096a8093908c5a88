"""Helpers every page module uses: reading a submitted form, re-rendering it with errors, safe redirects."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from app.core.errors import AppError
from app.core.forms import CORRECT_FIELDS
from app.core.templating import redirect, render
from app.core.web import CSRF_FIELD

SECRET_FIELDS = {"password", "code", CSRF_FIELD}


async def read_form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormFields = Annotated[dict[str, str], Depends(read_form)]


def form_error(
    request: Request,
    db: Session,
    template: str,
    error: AppError,
    fields: dict[str, str],
    context: dict[str, Any] | None = None,
) -> HTMLResponse:
    """Re-render a form after a refused submission: nothing written, values kept (never secrets)."""
    values = {key: value for key, value in fields.items() if key not in SECRET_FIELDS}
    # The summary at the top lists every field's message as a link to it; the general message is left out when it
    # would only repeat one of them, or only say to correct the fields listed under it.
    repeats = error.message in error.fields.values() or (error.fields and error.message == CORRECT_FIELDS)
    summary = None if repeats else error.message
    page = {
        "errors": error.fields,
        "error_title": error.title,
        "error_message": summary,
        "values": values,
        **(context or {}),
    }
    # Rendered before the rollback: a rollback expires every loaded object the page still needs.
    response = render(request, template, page, status_code=error.status_code, headers=error.headers)
    db.rollback()
    return response


def refused(request: Request, db: Session, target: str, error: AppError) -> RedirectResponse:
    """For small forms inside a larger page: undo what was written and go back with the reason as a message."""
    db.rollback()
    return redirect(request, target, error.summary, "error")


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths are followed after sign-in, so a link cannot bounce people elsewhere."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
