"""Helpers every page module uses: reading a submitted form, re-rendering it with errors, safe redirects."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.core.errors import AppError
from app.core.forms import CORRECT_FIELDS
from app.core.routing import refusal
from app.core.templating import flash, redirect, render
from app.core.web import CSRF_FIELD

SECRET_FIELDS = {"password", "code", CSRF_FIELD}


async def read_form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormFields = Annotated[dict[str, str], Depends(read_form)]


def form_error(
    request: Request,
    template: str,
    error: AppError,
    fields: dict[str, str],
    context: dict[str, Any] | None = None,
) -> HTMLResponse:
    """Re-render a form after a refused submission, values kept (never secrets). Its error status rolls the
    request's unit of work back (app/core/routing.py): nothing the submission wrote stands."""
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
    return render(request, template, page, status_code=error.status_code, headers=error.headers)


def refused(request: Request, target: str, error: AppError) -> RedirectResponse:
    """For small forms inside a larger page: go back with the reason as a message. The request's unit of work
    rolls back, as for an error status (app/core/routing.py): nothing the refused submission wrote stands."""
    translated = request.app.state.templates.env.filters["translate"]
    summary = "; ".join(translated(text) for text in error.fields.values()) or translated(error.message)
    errors = {name: translated(text) for name, text in error.fields.items()}
    response = redirect(request, target)
    # The form the refusal is about, by its action (this request's path): a page that shows the form shows every
    # error in it, each by its field; any other page shows the message at the top, as before.
    flash(response, request, summary, "error", form=request.url.path, errors=errors)
    return refusal(response)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths are followed after sign-in, so a link cannot bounce people elsewhere."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
