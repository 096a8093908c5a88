"""The handlers that answer errors: JSON for the API, pages for people.

Apart from the error classes (app/core/errors.py), which services raise without loading templates.
"""

from __future__ import annotations

import functools
import logging
import re
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app.core.access import route_table
from app.core.cookieless import line_by_the_hour
from app.core.errors import (
    AppError,
    Conflict,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    SignInRequired,
    Unavailable,
    error_body,
)
from app.core.forms import message_for
from app.core.i18n import N_
from app.core.logging import COARSE_TIME
from app.core.templating import render

logger = logging.getLogger("undersigned.errors")


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


TITLES = {
    400: AppError.title,
    401: SignInRequired.title,
    403: Forbidden.title,
    404: NotFound.title,
    405: "That action is not available here",
    409: Conflict.title,
    410: Gone.title,
    413: PayloadTooLarge.title,
    422: InvalidInput.title,
    429: RateLimited.title,
    500: "Something went wrong on our side",
    503: Unavailable.title,
}
_CODES = {
    400: "bad_request",
    401: "sign_in_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def render_error(
    request: Request,
    status_code: int,
    message: str,
    *,
    code: str | None = None,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    code = code or _CODES.get(status_code, "error")
    if wants_json(request):
        return JSONResponse(error_body(code, message, fields), status_code=status_code, headers=headers)
    if status_code == 401 and request.method == "GET":
        # People who open a page that needs an account are taken to sign in, then brought back.
        return RedirectResponse(f"/signin?{urlencode({'next': request.url.path})}", status_code=303)

    template = f"errors/{status_code}.html" if status_code in (403, 404, 422, 500) else "errors/error.html"
    return render(
        request,
        template,
        {
            "title": TITLES.get(status_code, "Error"),
            "message": message,
            "fields": fields or {},
            "status_code": status_code,
        },
        status_code=status_code,
        headers=headers,
    )


def _methods_at(request: Request) -> tuple[set[str], set[str]]:
    """The methods routes take at this request's path: routes whose path is literal, and routes with parameters."""
    literal: set[str] = set()
    templated: set[str] = set()
    for method, path in route_table(request.app)[0]:
        if _path_pattern(path).match(request.scope["path"]):
            (templated if "{" in path else literal).add(method)
    return literal, templated


@functools.lru_cache(maxsize=1024)
def _path_pattern(path: str) -> re.Pattern[str]:
    return compile_path(path)[0]


def allowed_methods(request: Request) -> str:
    """The Allow header of a 405: every method the path takes (Starlette named only the first route's), HEAD with
    GET (app/core/web.py answers it). A literal path ("/petitions/similar") is not the id of a templated one."""
    literal, templated = _methods_at(request)
    allowed = literal or templated
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(sorted(allowed))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return render_error(
            request, exc.status_code, exc.message, code=exc.code, fields=exc.fields, headers=exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {
            404: N_("There is nothing at this address. Check the link, or start from the home page."),
            405: N_("This address does not accept that kind of request."),
        }
        message = messages.get(exc.status_code) or (exc.detail if isinstance(exc.detail, str) else "Error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return render_error(request, exc.status_code, message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        if any(error.get("loc", ("",))[0] == "path" for error in exc.errors()) and _methods_at(request)[0]:
            # PUT /api/v1/petitions/similar reached PUT /api/v1/petitions/{petition_id} and failed on the id:
            # the path names a route of its own, which does not take this method.
            return render_error(
                request,
                405,
                N_("This address does not accept that kind of request."),
                headers={"Allow": allowed_methods(request)},
            )
        fields: dict[str, str] = {}
        for error in exc.errors():
            location = [str(part) for part in error.get("loc", ())]
            # The first part says where (body, query...); a field may itself be called "body".
            if location and location[0] in ("body", "query", "path", "form", "header", "cookie"):
                location = location[1:]
            fields.setdefault(".".join(location) or "request", message_for(error))
        return render_error(request, 422, N_("Some of what was sent is missing or not valid."), fields=fields)

    @app.exception_handler(DataError)
    async def _value_refused_by_the_database(request: Request, exc: DataError) -> Response:
        # PostgreSQL refuses some values that pass validation (a NUL character in text, which SQLite stores):
        # the request is refused and its unit of work rolled back, rather than answered with a 500.
        logger.warning("value refused by the database", extra={"error_type": type(exc.orig).__name__})
        if getattr(exc.orig, "sqlstate", None) == "22003":  # numeric_value_out_of_range: no NUL to speak of
            return render_error(request, 422, "A number sent is out of range. Please send a smaller one.")
        return render_error(
            request,
            422,
            "Some of what was sent cannot be stored (a NUL character, for example). Please remove it and try again.",
        )

    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, exc: OperationalError) -> Response:
        logger.error(
            "database unavailable",
            extra={"error_type": type(exc.orig).__name__, COARSE_TIME: line_by_the_hour(request.scope)},
        )
        return render_error(
            request,
            503,
            "The database cannot be reached right now. Please try again in a minute.",
            headers={"Retry-After": "30"},
        )

    @app.exception_handler(PoolTimeout)
    async def _database_busy(request: Request, exc: PoolTimeout) -> Response:
        logger.error(
            "no free database connection",
            extra={"error_type": "PoolTimeout", COARSE_TIME: line_by_the_hour(request.scope)},
        )
        return render_error(
            request, 503, "We are very busy right now. Please try again in a moment.", headers={"Retry-After": "5"}
        )
