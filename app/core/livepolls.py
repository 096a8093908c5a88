"""The live polls shared by every reader of a public petition for a few seconds (issue #24's viral petition).

Every open petition page asks for its live state every `tally_poll_seconds` (app/static/tally.js): the count, the
state, and how many comments arrived since the discussion's newest on the page, one request for both (it was two,
the petition's JSON and the discussion's count: 1,333 requests a second for 10,000 open pages, more than this
machine answered in all). It sends the ETag of its last answer. While the petition is quiet, `NotModified`
(app/core/versions.py) answers 304 without the database. While it is signed a hundred times a second, the page
version has moved by the next poll, always: each poll then went the whole way (the reader's session, the petition,
the answer), 8 ms of CPU for the same few hundred bytes every reader gets. 10,000 open pages polling every 15 s
would have needed several cores for that alone.

So the answer of a public petition (one any signed-out reader may read: the route says so, `mark_public`) is kept
in this process and given to every reader, signed in or not, for `shared_page_seconds` while the petition's
content version holds (app/core/versions.py: it moves on every change but a signature). The count may lag by that
much, as on the page's shared copies; a hidden petition, a closing, a response, anything else, moves the content
version and is answered afresh once the process reads the new version: at once, or within `READ_SECONDS` where one
read of the version answers the process's polls for that long (app/core/versions.py, `PageVersions.read`). A reader
whose ETag is the kept answer's gets a 304. Nothing of the reader is kept: the answer is the same for everyone, and
a response that sets a cookie is never kept.

The comments' count, in the petition page's poll and in the discussion pages' own (app/static/comments.js, where
no tally polls: `/comments/count`), is kept per (petition, `after`, content version): every new comment, a hidden
one, an edit, moves the content version, so the count is never older than the last comment but for the polls
that arrive while the next answer is being made (they get the one before, no older than `shared_page_seconds`), and
all the pages opened since the same newest comment share one answer. It used to be the rendered new comments for
each reader, ~10 ms of CPU a poll (docs/benchmarks.md). The petition's JSON (`/api/v1/petitions/{id}`, for API
clients) is kept the same way.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass
from typing import TypeGuard
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.versions import CONTENT, LIVE, POLLS, SCOPE_VERSION, PageVersions, asked_place

PUBLIC_ANSWER = "undersigned_public_answer"  # request.state: the route's answer may be shared with every reader
TALLY, TALLY_ROUTE, _KIND = POLLS[0]
COMMENT_COUNT, COMMENT_COUNT_ROUTE, _COUNT_KIND = POLLS[2]
LIVE_POLL, LIVE_ROUTE, _LIVE_KIND = LIVE
# Answers kept: a tally per busy petition, and a count per place (`after`) its open pages name. Each a few hundred
# bytes; the oldest goes first.
MAX_ANSWERS = 4096
AFTER_MAX = 80  # the route's own limit on `after`: a longer one is refused there, and never kept


def mark_public(request: Request) -> None:
    """Say that this request's answer is the same for every reader, signed in or not."""
    setattr(request.state, PUBLIC_ANSWER, True)


_Key = tuple[str, int, str | None]  # the poll, the petition, the discussion's place the page names (None: none)


def _shared_poll(scope: Scope) -> tuple[_Key, object] | None:
    """The key of a poll whose answer may be shared, and its route (for the request log); None for anything else."""
    match = TALLY.match(scope["path"])
    if match is not None:
        return ("tally", int(match.group(1)), None), TALLY_ROUTE
    for poll, pattern, route in (
        ("comment-count", COMMENT_COUNT, COMMENT_COUNT_ROUTE),
        ("live", LIVE_POLL, LIVE_ROUTE),
    ):
        match = pattern.match(scope["path"])
        if match is None:
            continue
        # Only the page's own question, `?after=<place>` or nothing: anything else goes the long way, unkept, so a
        # key is never more than the route itself accepts.
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        if len(query) > 1 or any(name != "after" or len(value) > AFTER_MAX for name, value in query):
            return None
        place = asked_place(scope)
        # The count route reads no place as "" (every comment); the live poll answers no count without one.
        return (poll, int(match.group(1)), "" if place is None and poll == "comment-count" else place), route
    return None


@dataclass(frozen=True)
class _Answer:
    content_version: int
    made: float
    etag: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


class SharedTally:
    """Inside `NotModified` (a poll naming the current version is answered there, before this), outside the
    routes: the kept answer of a public petition's tally or comment count, or the route's, kept when it may be."""

    def __init__(self, app: ASGIApp, *, versions: PageVersions, seconds: float) -> None:
        self.app = app
        self.versions = versions
        self.seconds = seconds
        self.clock = time.monotonic
        self._answers: dict[_Key, _Answer] = {}
        # The answers being made, per event loop (a test serves one app from several): the polls that find the kept
        # answer out of date while one is being made wait for it rather than each go the long way.
        self._making: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, asyncio.Event]] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.seconds or scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        polled = _shared_poll(scope)
        if polled is None:
            await self.app(scope, receive, send)
            return
        key, route = polled
        petition_id = key[1]
        content_version = await self.versions.read(petition_id, CONTENT)  # before the route reads anything
        if content_version is None:  # Redis away: the long way
            await self.app(scope, receive, send)
            return
        kept = self._answers.get(key)
        if self._current(kept, content_version):
            await self._send_kept(scope, send, route, kept)
            return
        making = self._making.setdefault(asyncio.get_running_loop(), {})
        if kept is not None and key in making and self.clock() - kept.made < self.seconds:
            # Another poll of this process is making the new answer: this one gets the answer before, as every poll
            # did a moment ago. Waiting for the new one cost each such poll the maker's whole way through the
            # route, 200-300 ms under issue #24's viral petition (a comment a second), and the open pages' polls
            # fell behind: 535 of 667 a second answered. The answer is at most `seconds` old, the freshness every
            # kept answer has; the poll that makes the new one, and every poll after it, gets the new one.
            await self._send_kept(scope, send, route, kept)
            return
        while kept is not None and key in making:
            # Out of date, and a poll of this process is making the new answer: the one this poll would make. Only
            # where an answer was kept before, so a petition whose answers are never kept (one only some may read)
            # is never polled one reader at a time.
            await making[key].wait()
            kept = self._answers.get(key)
            # Made from a version at least as new as the one this poll read: the answer it would have made, or a
            # newer one. An older one (a change moves the version twice, before and after its commit): wait for the
            # next poll that makes one, or make it.
            if self._current(kept, content_version, or_newer=True):
                await self._send_kept(scope, send, route, kept)
                return
        leads = key not in making  # else another poll, which did not wait either, is making one already
        if leads:
            making[key] = asyncio.Event()
        try:
            await self._answer_and_keep(scope, receive, send, key, content_version)
        finally:
            if leads:
                making.pop(key).set()

    def _current(self, kept: _Answer | None, content_version: int, *, or_newer: bool = False) -> TypeGuard[_Answer]:
        if kept is None or self.clock() - kept.made >= self.seconds:
            return False
        return kept.content_version == content_version or (or_newer and kept.content_version > content_version)

    @staticmethod
    async def _send_kept(scope: Scope, send: Send, route: object, kept: _Answer) -> None:
        scope["route"] = route  # for the request log
        if _if_none_match(scope) == kept.etag:
            headers = [(b"etag", kept.etag), (b"cache-control", b"private, no-cache")]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": list(kept.headers)})
        await send({"type": "http.response.body", "body": kept.body})

    async def _answer_and_keep(
        self, scope: Scope, receive: Receive, send: Send, key: _Key, content_version: int
    ) -> None:
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keep)
        etag = next((value for name, value in headers if name.lower() == b"etag"), None)
        if status != 200 or not scope.get("state", {}).get(PUBLIC_ANSWER):
            # Not to be shared now (hidden, gone, or only some may read it): no poll waits for another's answer.
            self._answers.pop(key, None)
            return
        if (
            etag is None
            or SCOPE_VERSION not in scope  # the ETag was not made from a version read before the route
            or any(name.lower() == b"set-cookie" for name, _ in headers)
        ):
            return  # this reader's answer only; the next poll makes the one to share
        self._answers.pop(key, None)  # kept again: last in the line to go
        if len(self._answers) >= MAX_ANSWERS:
            self._answers.pop(next(iter(self._answers)))
        self._answers[key] = _Answer(
            content_version=content_version, made=self.clock(), etag=etag, headers=headers, body=b"".join(chunks)
        )

    def clear(self) -> None:
        self._answers.clear()


def _if_none_match(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return value
    return None
