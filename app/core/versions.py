"""Each petition page's version: a counter the services bump on every change that shows on the page.

A signed-in reader's petition page and every open page's live poll ask "has anything changed since?" far more
often than anything changes: 10,000 open pages polling every 15 s are 667 requests a second. The services mark
a petition as changed in the request's session (`page_changed`); once that session's transaction commits, its
petitions' counters go up by one. Bumped after the commit, never before: a reader who sees version n reads the
database at least as new as n, so nothing rendered from it is kept under a version that predates what it shows.

What the counter serves:
- the live polls (the petition's JSON, the discussion's "new comments") answer 304 Not Modified to a reader whose
  ETag names the current version, without the session, the user or the database (`NotModified`);
- the petition page renders what is the same for every reader once per version (app/petitions/page_cache.py).

Where it lives: in Redis when one is configured, shared by every server process; else in this process's memory
(one process: `make run`, SQLite). Several processes without Redis would each keep their own counters, so a
change made through one would not reach the others' copies: deployments of several processes configure Redis
(docs/deploy.md), as they already do for rate limits.

A counter never goes back to a number it showed: it starts at a random base, set by the first bump that finds it
missing (SET NX in Redis), so a counter lost (a Redis flush, an evicted key, a restart) starts again far from any
number an open page holds, and an old tab's ETag never names a version again. Reading a counter never creates one
(a poll may name any petition id): a missing counter reads as 0, a number no bumped counter holds. A bump
that cannot reach Redis is lost, and the counter then stays on a number older than the page: so an ETag also names
the minute (`TAG_LIFETIME`) it was made in, and a 304 is never answered for a tag older than that, the page copies'
own limit (MAX_AGE in app/petitions/page_cache.py).

Two counters per petition. A signature changes only the count, and a petition going viral takes a hundred a
second: had every one of them moved everything keyed by the version, no page copy would have been used twice and no
poll for new comments answered 304. So the page version (`get`) moves on every change, a signature included, and
names the tally's answers (the petition's JSON); the content version (`get_content`) moves on every change but a
bare signature (`page_changed(..., count_only=True)`), and names the discussion's answers and the page copies,
which show a new signature within `shared_page_seconds` (app/petitions/page_cache.py).

Where it is read: the live polls' middleware (`NotModified` here, `SharedTally` in app/core/livepolls.py) runs on the
event loop's thread, before any worker thread, and reads with `PageVersions.read`: an asyncio Redis client, one per
event loop, opened by the app's lifespan and closed at its shutdown, so that the loop answers other requests while
Redis answers this one. A py-spy profile of the viral petition (docs/benchmarks.md) found the blocking read made there
14 % of the loop thread's samples: every request queued behind each round trip. Code in worker threads (the page
copies, the routes) reads with `get`, on the blocking client. Both read the same counter, with the same timeouts,
and both read a missing counter as 0 and an unreachable Redis as None. Where pages may be `shared_page_seconds`
old (production), one read answers a process's reads of the same counter for `READ_SECONDS`; `get`'s, only until
this process changes the petition.

Metadata: a counter holds a number per petition and nothing about who changed it. An anonymous batch bumps it
when the batch is written, which is when the batch becomes public anyway; nothing per reader goes into it. An ETag
is a keyed hash of (petition, version, minute): the same for every reader of that version, and not guessable
without reading the petition once (a 304 to a guessed tag would say a draft exists).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

import anyio.to_thread
import redis
import redis.asyncio
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.clock import Clock
from app.core.logging import COARSE_TIME
from app.core.security import Keyring

logger = logging.getLogger("undersigned.versions")

PENDING = "undersigned_changed_petitions"  # Session.info: the petitions to bump once the transaction commits
PENDING_CONTENT = "undersigned_changed_content"  # ... and those whose content changed, not only their count
SCOPE_VERSION = "undersigned_page_version"  # the version read before the request reached the database
KEY_PREFIX = "undersigned:page-version:"
CONTENT_KEY_PREFIX = "undersigned:content-version:"
PAGE, CONTENT = "page", "content"  # the two counters of each petition
# How long an ETag may be answered 304: the page copies' MAX_AGE (app/petitions/page_cache.py). A tag names the
# window it was made in, so a counter that missed a bump (Redis away) holds a stale answer no longer than a copy.
TAG_LIFETIME = 60
# How long one read of a counter from Redis answers the polls of a process (`PageVersions.read`), in production.
READ_SECONDS = 0.25
# The counters a process keeps a read of, per event loop: far more than the petitions open at once.
MAX_READS = 4096
# A short timeout (seconds, to connect and to answer): a poll that cannot ask Redis goes the long way, through the
# database, rather than wait.
REDIS_TIMEOUT = 0.5


def _base() -> int:
    """Where a counter starts: random, far from any number a lost counter reached (2**48: no petition changes that
    often), and well inside Redis's 64-bit integers."""
    return secrets.randbelow(2**48)


def _failed(read: asyncio.Future[int | None]) -> bool:
    """A read from Redis that is over and gave no version: not to be given to the polls after it."""
    return read.done() and (read.cancelled() or read.exception() is not None or read.result() is None)


def _version(value: bytes | str | None) -> int:
    return int(value) if value is not None else 0  # never bumped, or lost: no bumped counter reads 0


class Counters(Protocol):
    """Where the numbers live: `MemoryCounters` or `RedisCounters`."""

    def get(self, petition_id: int, fresh_for: float = 0.0) -> int | None:
        """The current version, or None when it cannot be read (Redis away): then nothing is answered from it.
        `fresh_for`: how old a read of this process may be, where reading costs a round trip."""
        ...

    async def read(self, petition_id: int, loop_client: redis.asyncio.Redis | None) -> int | None:
        """`get` for code on the event loop, which must not wait on its thread: `loop_client` is the loop's asyncio
        Redis client (`PageVersions.open_loop_client`), None on a loop that has none."""
        ...

    def bump(self, petition_ids: Iterable[int]) -> None: ...


class MemoryCounters:
    def __init__(self) -> None:
        self._versions: dict[int, int] = {}
        self._lock = threading.Lock()

    def get(self, petition_id: int, fresh_for: float = 0.0) -> int | None:
        return self._versions.get(petition_id, 0)  # never bumped (in this process's life): no bumped counter reads 0

    async def read(self, petition_id: int, loop_client: redis.asyncio.Redis | None) -> int | None:
        return self.get(petition_id)  # in this process's memory: nothing to wait for

    def bump(self, petition_ids: Iterable[int]) -> None:
        with self._lock:
            for petition_id in petition_ids:
                self._versions[petition_id] = self._versions.get(petition_id, _base()) + 1


class RedisCounters:
    def __init__(self, url: str, prefix: str = KEY_PREFIX) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
        self._prefix = prefix
        # `get`'s last read of each petition's counter, and when (`monotonic`); a bump in this process drops it, as
        # it starts and once Redis has it, and counts in `_bumps` both times, so that a read under way meanwhile (which
        # may have read the counter before the increment) is not kept. `_lock` makes the check and the keeping one.
        self._recent: dict[int, tuple[float, int]] = {}
        self._bumps: dict[int, int] = {}
        self._lock = threading.Lock()
        self.monotonic = time.monotonic

    def get(self, petition_id: int, fresh_for: float = 0.0) -> int | None:
        """`fresh_for`: a read made less than that many seconds ago in this process answers, unless this process
        bumped the counter since (`PageVersions.get`)."""
        if fresh_for:
            recent = self._recent.get(petition_id)
            if recent is not None and self.monotonic() - recent[0] < fresh_for:
                return recent[1]
        asked, bumps = self.monotonic(), self._bumps.get(petition_id, 0)
        try:
            value = _version(self._redis.get(self._prefix + str(petition_id)))
        except redis.exceptions.RedisError:
            return None
        if fresh_for:
            with self._lock:
                if self._bumps.get(petition_id, 0) == bumps:
                    if len(self._recent) >= MAX_READS:
                        self._recent.clear()
                    self._recent[petition_id] = (asked, value)
        return value

    def _forget(self, petition_ids: list[int]) -> None:
        with self._lock:
            if len(self._bumps) >= MAX_READS:
                self._bumps.clear()  # a read under way may be kept: at most `fresh_for` old, as any read
            for petition_id in petition_ids:
                self._bumps[petition_id] = self._bumps.get(petition_id, 0) + 1
                self._recent.pop(petition_id, None)

    async def read(self, petition_id: int, loop_client: redis.asyncio.Redis | None) -> int | None:
        if loop_client is None:
            # A loop the app's lifespan did not start (a test calling the app without it): the blocking client, in a
            # worker thread. A client made here could not be closed on this loop: nothing says when the loop ends.
            return await anyio.to_thread.run_sync(self.get, petition_id)
        try:
            value = await loop_client.get(self._prefix + str(petition_id))
        except (redis.exceptions.RedisError, OSError):  # OSError: a socket's own error, should one pass unwrapped
            return None
        return _version(value)

    def bump(self, petition_ids: Iterable[int]) -> None:
        petition_ids = list(petition_ids)
        self._forget(petition_ids)
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for petition_id in petition_ids:
                    key = self._prefix + str(petition_id)
                    pipe.set(key, _base(), nx=True)  # a lost counter starts again far from its old numbers
                    pipe.incr(key)
                pipe.execute()
        except redis.exceptions.RedisError:
            # The change is committed; the page copies keyed by the old version also expire on their own. By the
            # hour: an anonymous batch bumps its petitions, so a line to the millisecond would date the batch.
            logger.warning("could not bump page versions in Redis", extra={COARSE_TIME: True})
        self._forget(petition_ids)  # a read made while the increment was on its way kept the number before it


# One set of counters per place they live, per process: the services mark a change on the session alone (no runtime
# at hand in every one of them), and a commit bumps every set this process knows (in production, one).
_counters: dict[tuple[str | None, str], Counters] = {}
_counters_lock = threading.Lock()


def counters(redis_url: str | None, kind: str = PAGE) -> Counters:
    with _counters_lock:
        if (redis_url, kind) not in _counters:
            prefix = KEY_PREFIX if kind == PAGE else CONTENT_KEY_PREFIX
            _counters[redis_url, kind] = RedisCounters(redis_url, prefix) if redis_url else MemoryCounters()
        return _counters[redis_url, kind]


class PageVersions:
    """A deployment's counters, and the ETags made from them (keyed by its secret)."""

    def __init__(self, keyring: Keyring, redis_url: str | None, clock: Clock, *, read_seconds: float = 0.0) -> None:
        self._etag_key = keyring.key("page-version-etag")
        self._redis_url = redis_url
        self.counters = counters(redis_url)
        self.content_counters = counters(redis_url, CONTENT)
        self._clock = clock
        # Per event loop that serves the app (one in a server process), its asyncio Redis client: a client's
        # connections belong to the loop they were made on.
        self._loop_clients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
        # `read`'s answers from Redis, shared for `read_seconds`: per loop, by (kind, petition), when each was asked
        # and the answer (a future while Redis answers it).
        self.read_seconds = read_seconds if redis_url else 0.0
        self.monotonic = time.monotonic
        self._reads: dict[asyncio.AbstractEventLoop, dict[tuple[str, int], tuple[float, asyncio.Future[int | None]]]]
        self._reads = {}

    def get(self, petition_id: int, kind: str = PAGE) -> int | None:
        """The page version (every change), or with `kind` CONTENT the content version (every change but a bare
        signature). Blocking: for code in a worker thread; on the event loop, `read`.

        A read from Redis answers this process's pages for `read_seconds`, as `read` does its polls, unless this
        process changed the petition since: what a page shows is at most `read_seconds` behind the counter, and a
        change made by this process is seen by its next page at once (the worker who made it, sent back to the
        page, is most often on the same connection, so the same process; on another, within `read_seconds`). Each
        signed-in page read both counters, the blocking client's work a tenth of the page's CPU in issue #24's viral
        petition (py-spy)."""
        return (self.counters if kind == PAGE else self.content_counters).get(petition_id, self.read_seconds)

    def get_content(self, petition_id: int) -> int | None:
        return self.get(petition_id, CONTENT)

    async def read(self, petition_id: int, kind: str = PAGE) -> int | None:
        """`get` for code on the event loop (the live polls' middleware): the loop's thread answers other requests
        while Redis answers this one.

        One read from Redis answers every poll of this process for the same counter for `read_seconds` (production:
        `READ_SECONDS`; 0, every poll its own read, where `shared_page_seconds` is 0): the polls that arrive while it
        is asked wait for its answer, and those after it, within the time, get it at once. In issue #24's viral
        petition, 10,000 open pages polling every 15 s made two reads per poll, 1,300 a second, and the asyncio Redis
        client's work for them was 18 % of the two server processes' CPU (py-spy, docs/benchmarks.md). A poll so
        answered is at most `read_seconds` behind the counter, well within `shared_page_seconds`, the freshness its
        answer has anyway (app/core/livepolls.py). An unreachable Redis (None) is not kept."""
        counters = self.counters if kind == PAGE else self.content_counters
        loop = asyncio.get_running_loop()
        client = self._loop_clients.get(loop)
        if not self.read_seconds or client is None:
            return await counters.read(petition_id, client)
        reads = self._reads.setdefault(loop, {})
        now = self.monotonic()
        key = (kind, petition_id)
        found = reads.get(key)
        if found is None or now - found[0] >= self.read_seconds or _failed(found[1]):
            if len(reads) >= MAX_READS:  # the oldest asked goes first (a dict keeps the order they were put in)
                del reads[next(iter(reads))]
            found = (now, asyncio.ensure_future(counters.read(petition_id, client)))
            reads.pop(key, None)
            reads[key] = found
        # Shielded: a poll whose client went away must not cancel the read the others wait for.
        return await asyncio.shield(found[1])

    async def open_loop_client(self) -> None:
        """At the app's startup, on the loop that serves it: the asyncio client `read` uses there (none without
        Redis). It connects on its first read."""
        if self._redis_url:
            loop = asyncio.get_running_loop()
            if loop not in self._loop_clients:
                self._loop_clients[loop] = redis.asyncio.Redis.from_url(
                    self._redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
                )

    async def close_loop_client(self) -> None:
        """At the app's shutdown: this loop's client closed, its connections with it."""
        self._reads.pop(asyncio.get_running_loop(), None)
        client = self._loop_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def etag(self, petition_id: int, version: int, kind: str = PAGE, place: str | None = None) -> str:
        """The tag of this version in the current window of TAG_LIFETIME seconds (the same in every process).
        `place`: the discussion's place a live poll names (`?after=`), part of what its answer says."""
        window = int(self._clock.now().timestamp()) // TAG_LIFETIME
        named = f"{petition_id}:{version}:{window}" if kind == PAGE else f"{petition_id}:{kind}:{version}:{window}"
        if place is not None:
            named += f":after={place}"
        digest = hmac.new(self._etag_key, named.encode(), "sha256").hexdigest()[:24]
        return f'"{digest}"'


def page_changed(db: Session, petition_id: int, *, count_only: bool = False) -> None:
    """Mark the petition's page as changed by this transaction: its version goes up now, and again once the
    transaction commits. Now, so that a reader of the same connection (a test's) sees the change at once; again
    after the commit, because a reader between the two may have read the database before the change and kept
    what it rendered under the first new version. (A transaction that rolls back may still bump it at the session's
    next commit: a needless new rendering, never a stale one.) `count_only`: a signature, which changes the count
    and the list of public names and nothing else; the content version stays."""
    _bump({petition_id})
    db.info.setdefault(PENDING, set()).add(petition_id)
    if not count_only:
        _bump_content({petition_id})
        db.info.setdefault(PENDING_CONTENT, set()).add(petition_id)


def _bump(petition_ids: set[int]) -> None:
    _bump_kind(petition_ids, PAGE)


def _bump_content(petition_ids: set[int]) -> None:
    _bump_kind(petition_ids, CONTENT)


def _bump_kind(petition_ids: set[int], kind: str) -> None:
    with _counters_lock:
        known = [store for (_url, store_kind), store in _counters.items() if store_kind == kind]
    for store in known:
        store.bump(sorted(petition_ids))


@event.listens_for(Session, "after_commit")
def _bump_after_commit(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if pending:
        _bump(pending)
    pending_content = session.info.pop(PENDING_CONTENT, None)
    if pending_content:
        _bump_content(pending_content)


@dataclass(frozen=True)
class _Route:
    """What the request log reads of the route that answered (a 304 here is answered before routing)."""

    path_format: str


# The live polls: the petition's JSON (API clients), named by the page version since it shows the count; the
# discussion's new comments and their count (comments.js where a page has no tally), named by the content version: a
# signature brings no new comment; and the petition page's one poll for both (tally.js), named by the page version
# and by the discussion's place it asks from (`?after=`), which its answer's count depends on.
POLLS = (
    (re.compile(r"^/api/v1/petitions/(\d{1,18})$"), _Route("/api/v1/petitions/{petition_id}"), PAGE),
    (re.compile(r"^/petitions/(\d{1,18})/comments/new$"), _Route("/petitions/{petition_id}/comments/new"), CONTENT),
    (re.compile(r"^/petitions/(\d{1,18})/comments/count$"), _Route("/petitions/{petition_id}/comments/count"), CONTENT),
    (re.compile(r"^/petitions/(\d{1,18})/live$"), _Route("/petitions/{petition_id}/live"), PAGE),
)
LIVE = POLLS[3]


def asked_place(scope: Scope) -> str | None:
    """The discussion's place a poll's query asks from (`?after=`; the last one, as the route reads it), or None."""
    found = None
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if name == "after":
            found = value
    return found


def _polled_petition(scope: Scope) -> tuple[int, _Route, str, str | None] | None:
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    for pattern, route, kind in POLLS:
        match = pattern.match(scope["path"])
        if match:
            place = asked_place(scope) if pattern is LIVE[0] else None
            return int(match.group(1)), route, kind, place
    return None


def _if_none_match(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return value
    return None


class NotModified:
    """Outside the shared page copies: a poll whose If-None-Match names the petition's current version is answered
    304 here, before sessions, users or the database; any other poll goes on, with the version read now (before the
    database) left for `StampVersion`."""

    def __init__(self, app: ASGIApp, *, versions: PageVersions) -> None:
        self.app = app
        self.versions = versions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        polled = _polled_petition(scope)
        if polled is None:
            await self.app(scope, receive, send)
            return
        petition_id, route, kind, place = polled
        version = await self.versions.read(petition_id, kind)
        if version is not None:
            etag = self.versions.etag(petition_id, version, kind, place).encode()
            if _if_none_match(scope) == etag:
                scope["route"] = route
                headers = [(b"etag", etag), (b"cache-control", b"private, no-cache")]
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
            scope[SCOPE_VERSION] = (petition_id, version, kind, place)
        await self.app(scope, receive, send)


class StampVersion:
    """Inside the shared page copies: a poll's 200 answer carries the ETag of the version read before it was made,
    so a shared copy keeps the tag of the version it shows."""

    def __init__(self, app: ASGIApp, *, versions: PageVersions) -> None:
        self.app = app
        self.versions = versions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        read = scope.get(SCOPE_VERSION)
        if read is None:
            await self.app(scope, receive, send)
            return
        etag = self.versions.etag(*read).encode()

        async def stamp(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = [(name, value) for name, value in message.get("headers", []) if name.lower() != b"etag"]
                message = {**message, "headers": [*headers, (b"etag", etag)]}
            await send(message)

        await self.app(scope, receive, stamp)
