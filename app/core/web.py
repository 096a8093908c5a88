"""Request plumbing shared by every route: CSRF, security headers, body size limit, request logs."""

from __future__ import annotations

import logging
import time

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.cookieless import is_cookieless, line_by_the_hour, logs_by_the_hour
from app.core.error_handlers import render_error
from app.core.errors import Forbidden
from app.core.i18n import N_
from app.core.logging import COARSE_TIME, HourlyRequests, release_held_lines
from app.core.security import SESSION_COOKIE, new_token

CSRF_COOKIE = "undersigned_csrf"
# Over https the seed cookie carries the __Host- prefix: no sibling site can set or shadow it (issue #21). Over
# plain http (development, tests) a browser refuses such a cookie, so it keeps the plain name there.
HOST_CSRF_COOKIE = "__Host-undersigned_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

request_logger = logging.getLogger("undersigned.requests")
error_logger = logging.getLogger("undersigned.errors")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


# Routes whose signed link is their whole authority: a mail's unsubscribe link, POSTed by a mail client with no
# cookie and no token (RFC 8058). A forged request would have to hold the link, and then it could click it.
LINK_AUTHORISED_PREFIXES = ("/unsubscribe/",)


def csrf_cookie(scheme: str) -> str:
    return HOST_CSRF_COOKIE if scheme == "https" else CSRF_COOKIE


def seed_cookie(seed: str, *, scheme: str, secure: bool) -> str:
    """The Set-Cookie value that gives a browser its CSRF seed."""
    flags = "; Secure" if secure or scheme == "https" else ""
    return f"{csrf_cookie(scheme)}={seed}; Path=/; HttpOnly; SameSite=Lax{flags}"


def rotate_csrf_seed(request: Request, response: Response, *, secure: bool) -> None:
    """A new seed at sign-in: a seed someone planted before, or read from the signed-out browser, is dropped."""
    response.headers.append("Set-Cookie", seed_cookie(new_token(), scheme=request.url.scheme, secure=secure))


async def csrf_protect(request: Request) -> None:
    """Refuse a state-changing request sent from another site, or whose token does not match this browser's CSRF
    cookie and, once signed in, its session."""
    if (
        request.method in SAFE_METHODS
        or is_cookieless(request.url.path)
        or request.url.path.startswith(LINK_AUTHORISED_PREFIXES)
    ):
        return
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden(N_("This form did not come from this site. Open the page here and try again."))
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    seed = request.cookies.get(csrf_cookie(request.url.scheme))
    if not request.app.state.keyring.csrf_valid(seed, token, request.cookies.get(SESSION_COOKIE)):
        raise Forbidden(N_("This form has expired or did not come from this site. Reload the page and try again."))


hourly_requests = HourlyRequests(request_logger)


class RequestContextMiddleware:
    """Gives every browser a CSRF seed cookie, adds security headers, limits body size, logs each request.

    The request log holds the route template (never the raw path, which may carry a link token), the status
    and the duration: no address, query string, cookie or client IP.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        secure_cookies: bool,
        hsts: bool,
        max_body_bytes: int,
        larger_bodies: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.secure_cookies = secure_cookies
        self.hsts = hsts
        self.max_body_bytes = max_body_bytes
        # Paths that take a file larger than any form (an admin's member list), with their own limit.
        self.larger_bodies = larger_bodies or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._releasing_at_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # HEAD answers as GET does, headers and status alike, without the body (RFC 9110, 9.3.2): the routes
        # declare GET only, and a HEAD of a page was a 405.
        head = scope["method"] == "HEAD"
        if head:
            scope["method"] = "GET"
        cookie_header, declared_length = "", None
        for name, value in scope["headers"]:  # only the two headers this needs, without building a dict
            if name == b"cookie":
                cookie_header = value.decode("latin-1")
            elif name == b"content-length":
                declared_length = value.decode("latin-1")
        # Starlette's parser, the one request.cookies uses, so both read the same seed.
        cookies = cookie_parser(cookie_header) if cookie_header else {}
        seed_name = csrf_cookie(scope.get("scheme", "http"))
        seed = cookies.get(seed_name)
        new_seed = None
        if not seed or len(seed) > 64:
            seed = new_seed = new_token()
        state = scope.setdefault("state", {})
        state["csrf_seed"] = seed
        state["csrf_session"] = cookies.get(SESSION_COOKIE)
        status_holder: dict[str, int | bool] = {"status": 500}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                response_headers = MutableHeaders(scope=message)
                response_headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                response_headers.setdefault("X-Content-Type-Options", "nosniff")
                response_headers.setdefault("Referrer-Policy", "same-origin")
                response_headers.setdefault("X-Frame-Options", "DENY")
                response_headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                if self.hsts:
                    response_headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
                if "cache-control" not in response_headers and not scope["path"].startswith("/static/"):
                    response_headers["Cache-Control"] = "no-store"
                # A response any cache may keep and replay to others (a QR code, a poster, the log) carries no
                # cookie: a shared cache that kept the seed would hand one browser's CSRF seed to everyone.
                shared = response_headers.get("cache-control", "").startswith("public")
                if new_seed and not is_cookieless(scope["path"]) and not shared:
                    response_headers.append(
                        "Set-Cookie",
                        seed_cookie(new_seed, scheme=scope.get("scheme", "http"), secure=self.secure_cookies),
                    )
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # Refused before the app runs, still with the headers every answer carries.
        limit = self.larger_bodies.get(scope["path"], self.max_body_bytes)
        if declared_length and declared_length.isdigit() and int(declared_length) > limit:
            await self._too_large(scope, send_with_headers)
            self._log(scope, 413, started)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _BodyTooLarge:
            if not status_holder.get("started"):
                await self._too_large(scope, send_with_headers)
            status_holder["status"] = 413
        except Exception as exc:
            # Handled here rather than by the server, whose own log line would print the exception's
            # message (database errors quote the statement's parameters: addresses, names).
            coarse = line_by_the_hour(scope)
            error_logger.error("unhandled error", exc_info=exc, extra={COARSE_TIME: True} if coarse else None)
            if not status_holder.get("started"):
                response = render_error(
                    Request(scope),
                    500,
                    "Something went wrong on our side. Nothing you did caused it; please try again.",
                )
                await response(scope, receive, send_with_headers)
        self._log(scope, status_holder["status"], started)

    @staticmethod
    async def _too_large(scope: Scope, send: Send) -> None:
        body = (
            b'{"error":{"code":"payload_too_large","message":"That is too much to send at once.","fields":{}}}'
            if scope["path"].startswith("/api/")
            else b"<!doctype html><html lang=en><title>Too large</title><p>That is too much to send at once. "
            b"Please shorten it and try again.</p></html>"
        )
        content_type = b"application/json" if scope["path"].startswith("/api/") else b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _releasing_at_shutdown(send: Send) -> Send:
        async def send_after_release(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                hourly_requests.release()
                release_held_lines()
            await send(message)

        return send_after_release

    @staticmethod
    def _log(scope: Scope, status: int | bool, started: float) -> None:
        if is_cookieless(scope["path"]):
            return
        route = getattr(scope.get("route"), "path_format", None)
        method = str(scope.get("method"))
        route_name = route or ("static" if scope["path"].startswith("/static/") else "unmatched")
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        if logs_by_the_hour(_route_of(scope)):
            hourly_requests.add(method=method, route=route_name, status=int(status), duration_ms=duration_ms)
            return
        hourly_requests.release_past()
        request_logger.info(
            "request", extra={"method": method, "route": route_name, "status": status, "duration_ms": duration_ms}
        )


def _route_of(scope: Scope) -> str:
    """The route template that answered, or the raw path when none did (yet)."""
    return getattr(scope.get("route"), "path_format", None) or scope["path"]


class _BodyTooLarge(Exception):
    pass
