"""One response shared by the signed-out readers of a busy page for a few seconds (a microcache).

A petition with a million signatures is read by far more people than sign it at any moment, and what a signed-out
reader sees of it depends on nothing but the address. Rendering the page for each of them costs tens of
milliseconds of one core; replaying a copy made a moment ago costs a fraction of one. So a route marked with
`shared_when_signed_out` keeps, per server process, its last 200 response for each address (path and query) for
`shared_page_seconds`; when the copy is older, one reader renders a new one while the others get the previous.

Never shared: requests with a session cookie (a signed-in reader's page is their own) or a flash message,
responses that set a cookie, anything but a 200, and any page that holds the reader's CSRF token (checked on
each copy before it is kept, so a form added to a shared page later stops the sharing rather than leaking
one reader's token to others). Signed-out readers may therefore see a page up to `shared_page_seconds` old:
a new signature, comment, or a moderator's decision reaches them that much later.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.security import SESSION_COOKIE
from app.core.templating import FLASH_COOKIE

SHARED = "shared_when_signed_out"
# Cookies that make a response the reader's own.
PERSONAL_COOKIES = (f"{SESSION_COOKIE}=".encode(), f"{FLASH_COOKIE}=".encode())
MAX_ENTRY_BYTES = 512 * 1024
MAX_TOTAL_BYTES = 32 * 1024 * 1024

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def shared_when_signed_out(endpoint: Endpoint) -> Endpoint:
    """Mark a GET route whose response to a signed-out reader depends only on its address (and may be a few
    seconds old). Put it under the route decorator."""
    setattr(endpoint, SHARED, True)
    return endpoint


@dataclass
class _Copy:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    route: Any
    made: float


class SharedPageCache:
    def __init__(self, app: ASGIApp, *, seconds: float, csrf_token: Callable[[str, str | None], str]) -> None:
        self.app = app
        self.seconds = seconds
        self.csrf_token = csrf_token
        self.clock = time.monotonic
        self._patterns: list[re.Pattern[str]] | None = None
        self._copies: OrderedDict[str, _Copy] = OrderedDict()
        self._bytes = 0
        # One event loop per process: these are read and changed without a lock.
        self._rendering: dict[str, asyncio.Event] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not self.seconds
            or not self._shared(scope)
            or _personal(scope)
        ):
            await self.app(scope, receive, send)
            return
        key = scope["path"] + "?" + scope["query_string"].decode("latin-1")
        copy, rendering = self._copies.get(key), self._rendering.get(key)
        if copy is None and rendering is not None:
            await rendering.wait()  # the first reader's copy, rather than every reader rendering it at once
            copy, rendering = self._copies.get(key), self._rendering.get(key)
        if copy is not None and (self.clock() - copy.made < self.seconds or rendering is not None):
            self._copies.move_to_end(key)
            scope["route"] = copy.route  # for the request log
            # A new list each time: middleware outside this one adds headers (a new reader's cookie) to it.
            await send({"type": "http.response.start", "status": copy.status, "headers": list(copy.headers)})
            await send({"type": "http.response.body", "body": copy.body})
            return
        await self._render(key, scope, receive, send)

    def _shared(self, scope: Scope) -> bool:
        if self._patterns is None:  # the app's routes, read once they are all there
            self._patterns = [
                compile_path(str(context.path))[0]
                for context in iter_route_contexts(scope["app"].routes)
                if getattr(getattr(context.original_route, "endpoint", None), SHARED, False)
            ]
        return any(pattern.match(scope["path"]) for pattern in self._patterns)

    async def _render(self, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        size = 0

        async def keep(message: Message) -> None:
            nonlocal status, headers, size
            if message["type"] == "http.response.start":
                # Copied now: the request context middleware adds its cookie to this message as it passes.
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body" and size <= MAX_ENTRY_BYTES:
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
            await send(message)

        rendered = self._rendering[key] = asyncio.Event()
        try:
            await self.app(scope, receive, keep)
            route = scope.get("route")  # the route that answered: another one may match the same path
            if (
                status == 200
                and size <= MAX_ENTRY_BYTES
                and getattr(getattr(route, "endpoint", None), SHARED, False)
                and not any(name.lower() == b"set-cookie" for name, _ in headers)
            ):
                body = b"".join(chunks)
                state = scope.get("state", {})
                seed = state.get("csrf_seed")
                if not (seed and self.csrf_token(seed, state.get("csrf_session")).encode() in body):
                    self._keep(key, _Copy(status=status, headers=headers, body=body, route=route, made=self.clock()))
        finally:
            if self._rendering.get(key) is rendered:  # (a reader whose wait found no copy renders its own)
                del self._rendering[key]
            rendered.set()

    def _keep(self, key: str, copy: _Copy) -> None:
        old = self._copies.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._copies[key] = copy
        self._bytes += len(copy.body)
        while self._bytes > MAX_TOTAL_BYTES and self._copies:
            _key, evicted = self._copies.popitem(last=False)
            self._bytes -= len(evicted.body)

    def clear(self) -> None:
        self._copies.clear()
        self._bytes = 0


def _personal(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"cookie":
            return any(cookie in value for cookie in PERSONAL_COOKIES)
    return False
