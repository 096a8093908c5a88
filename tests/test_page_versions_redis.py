"""The page versions in Redis as the live polls read them (issue #24): on the event loop, without blocking it.

`NotModified` and `SharedTally` (app/core/versions.py, app/core/livepolls.py) read a petition's version before
anything else runs, on the event loop's thread. A py-spy profile of the viral petition found that read made with the
blocking client: 14 % of the loop thread's samples, every request queued behind each round trip to Redis. Here Redis
sits behind a proxy that holds its replies, and the tests check that other requests go on meanwhile, and that a Redis
slow, slower than its timeout or down still gives correct answers: never a 500, never a 304 for a changed petition
once the tag's minute is over, a missing counter read as 0."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import queue
import secrets
import socket
import socketserver
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from app.core import versions
from app.core.settings import Settings
from tests import factories, live_server
from tests.conftest import REDIS_ADDRESS, make_settings, missing
from tests.serving import serving
from tests.test_page_versions import sign

pytestmark = pytest.mark.one_database

HELD = 0.3  # how long the proxy holds each reply: less than the clients' 0.5 s timeout, so every read completes


class SlowRedis(socketserver.ThreadingTCPServer):
    """A TCP proxy to the tests' Redis that holds every reply `delay` seconds, or, while `down`, closes every
    connection at once. It notes when each command arrives and when each reply leaves."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.upstream = upstream
        self.delay = 0.0
        self.down = False
        self.commands: queue.Queue[float] = queue.Queue()
        self.replies: queue.Queue[float] = queue.Queue()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"redis://{host!s}:{port}/0"

    def hold(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def drop_connections(self) -> None:
        with self._lock:
            held, self._sockets = self._sockets, set()
        for sock in held:
            _close(sock)

    def forget_traffic(self) -> None:
        for notes in (self.commands, self.replies):
            while not notes.empty():
                notes.get_nowait()

    def server_close(self) -> None:
        super().server_close()
        self.drop_connections()


class _Relay(socketserver.BaseRequestHandler):
    server: SlowRedis

    def handle(self) -> None:
        if self.server.down:
            return  # the connection closes at once, as a Redis that went away
        upstream = socket.create_connection(self.server.upstream)
        self.server.hold(self.request)
        self.server.hold(upstream)
        replies = threading.Thread(target=self._pass_replies, args=(upstream,), daemon=True)
        replies.start()
        try:
            while data := self.request.recv(65536):
                self.server.commands.put(time.monotonic())
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)
            replies.join()

    def _pass_replies(self, upstream: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                time.sleep(self.server.delay)
                self.server.replies.put(time.monotonic())  # before it leaves: a reader cannot have it earlier
                self.request.sendall(data)
        except OSError:
            pass
        finally:
            _close(self.request)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading it
    sock.close()


@pytest.fixture
def slow_redis() -> Iterator[SlowRedis]:
    host, port = REDIS_ADDRESS.rsplit(":", 1)
    try:
        redis.Redis(host=host, port=int(port), socket_connect_timeout=0.5).ping()
    except redis.exceptions.RedisError as problem:
        missing(f"Redis is not running at {REDIS_ADDRESS} ({problem})")
    # The apps made here keep their counters in this proxy's Redis: forgotten afterwards, so that no later test's
    # commit tries to bump them through a proxy that is gone. Only those: counters made meanwhile for anything else
    # (the suite's own runtime, when a test here is the first to ask for it) stay where later commits bump them.
    proxy = SlowRedis((host, int(port)))
    try:
        with serving(proxy):
            yield proxy
    finally:
        with versions._counters_lock:
            for key in [key for key in versions._counters if key[0] == proxy.url]:
                del versions._counters[key]


@pytest.fixture
def settings(slow_redis: SlowRedis, database_url: str) -> Settings:
    return make_settings(database_url, redis_url=slow_redis.url)


def _get(connection: http.client.HTTPConnection, path: str, **headers: str) -> tuple[int, float]:
    """The status, and when the answer had arrived whole."""
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status, time.monotonic()


def test_a_poll_waiting_for_redis_does_not_hold_up_other_requests(slow_redis: SlowRedis, tmp_path: Path) -> None:
    """A served app (uvicorn, its lifespan run): while a poll waits for Redis to answer its version, /healthz, which
    needs no Redis, is answered. With the blocking read, the loop's thread waited in it, and /healthz with it."""
    live = live_server.serve(tmp_path / "app.db", redis_url=slow_redis.url)
    address = urlsplit(live.base_url)
    poller = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    checker = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    poll = f"/api/v1/petitions/{2_000_000_000 + secrets.randbelow(10**8)}"  # no such petition: read, then 404
    try:
        _get(poller, poll)  # connections made (to the server, and its own to Redis) before anything is timed
        _get(checker, "/healthz")
        slow_redis.delay = HELD
        ahead, healthz_ms, poll_ms = [], [], []
        for _trial in range(5):
            slow_redis.forget_traffic()
            polled: dict[str, float] = {}

            def send_poll(polled: dict[str, float] = polled) -> None:
                started = time.monotonic()
                status, polled["done"] = _get(poller, poll)
                polled["ms"] = (polled["done"] - started) * 1000
                assert status == 404

            thread = threading.Thread(target=send_poll)
            thread.start()
            slow_redis.commands.get(timeout=10)  # the poll's read has reached Redis: the server waits for it now
            started = time.monotonic()
            status, answered = _get(checker, "/healthz")
            assert status == 200
            reply_left = slow_redis.replies.get(timeout=10)
            thread.join(timeout=10)
            ahead.append(answered < reply_left)
            healthz_ms.append((answered - started) * 1000)
            poll_ms.append(polled["ms"])
    finally:
        poller.close()
        checker.close()
        live.stop()
    measured = (
        f"/healthz answered while the Redis reply was held in {sum(ahead)} of {len(ahead)} trials; /healthz ms "
        f"{[round(ms) for ms in healthz_ms]} (median {statistics.median(healthz_ms):.0f}), the poll's ms "
        f"{[round(ms) for ms in poll_ms]} (median {statistics.median(poll_ms):.0f}), Redis held {HELD * 1000:.0f} ms"
    )
    print(measured)
    # Before: 0 of 5, each /healthz as slow as the poll (the loop answered it only once Redis had). A majority, not
    # all: on the busy shared machine one /healthz may take longer than the hold for reasons of its own.
    assert sum(ahead) > len(ahead) // 2, measured
    assert statistics.median(healthz_ms) < statistics.median(poll_ms) / 2, measured


def test_with_redis_slow_a_poll_is_still_answered_304_and_a_change_is_seen(slow_redis, db, rt, browser) -> None:
    petition = factories.open_petition(db, rt)
    url = f"/api/v1/petitions/{petition.id}"
    slow_redis.delay = 0.2
    first = browser.get(url)
    assert first.status_code == 200 and first.headers["ETag"]
    again = browser.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    sign(db, rt, petition, "Sam Signer")
    changed = browser.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200
    assert changed.json()["signature_count"] == 1
    assert changed.headers["ETag"] != first.headers["ETag"]


def test_with_redis_slower_than_its_timeout_a_poll_goes_the_long_way(slow_redis, db, rt, browser) -> None:
    petition = factories.open_petition(db, rt)
    url = f"/api/v1/petitions/{petition.id}"
    etag = browser.get(url).headers["ETag"]
    slow_redis.delay = 2.0  # past the clients' 0.5 s: the version cannot be read
    answer = browser.get(url, headers={"If-None-Match": etag})
    assert answer.status_code == 200, "a version that could not be read answers nothing unchanged"
    assert answer.json()["signature_count"] == 0
    assert "ETag" not in answer.headers  # no version read, so none named
    comments = browser.get(f"/petitions/{petition.id}/comments/count?after=")
    assert comments.status_code == 200


def _without_rate_limits(rt, monkeypatch: pytest.MonkeyPatch) -> None:
    """Signatures arranged while Redis is down: the rate limits kept there refuse them (`limits` raises), another
    matter than the versions."""
    monkeypatch.setattr(rt.limiter, "hit", lambda **_rule: None)


def test_with_redis_down_polls_and_signatures_are_answered(slow_redis, db, rt, browser, monkeypatch) -> None:
    _without_rate_limits(rt, monkeypatch)
    petition = factories.open_petition(db, rt)
    url = f"/api/v1/petitions/{petition.id}"
    etag = browser.get(url).headers["ETag"]
    slow_redis.down = True
    slow_redis.drop_connections()
    assert browser.get(url, headers={"If-None-Match": etag}).status_code == 200
    sign(db, rt, petition, "Sam Signer")  # its bump is lost, and logged
    answer = browser.get(url, headers={"If-None-Match": etag})
    assert answer.status_code == 200
    assert answer.json()["signature_count"] == 1
    assert browser.get(f"/petitions/{petition.id}/comments/count?after=").status_code == 200
    assert browser.get(f"/petitions/{petition.id}").status_code == 200


def test_a_bump_lost_while_redis_was_down_is_answered_304_for_the_tag_minute_only(
    slow_redis, db, rt, browser, clock, monkeypatch
) -> None:
    """The documented bound: a bump that could not reach Redis leaves the counter behind the page, and an ETag
    names its minute, so an old tag is answered 304 no longer than TAG_LIFETIME."""
    _without_rate_limits(rt, monkeypatch)
    petition = factories.open_petition(db, rt)
    url = f"/api/v1/petitions/{petition.id}"
    etag = browser.get(url).headers["ETag"]
    slow_redis.down = True
    slow_redis.drop_connections()
    sign(db, rt, petition, "Sam Signer")  # lost: the counter keeps the old version
    slow_redis.down = False
    assert browser.get(url, headers={"If-None-Match": etag}).status_code == 304
    clock.advance(timedelta(seconds=versions.TAG_LIFETIME))
    answer = browser.get(url, headers={"If-None-Match": etag})
    assert answer.status_code == 200
    assert answer.json()["signature_count"] == 1


def test_a_read_on_the_loop_finds_a_missing_counter_at_0_and_creates_none(slow_redis, rt) -> None:
    petition_id = 10**15 + versions._base()  # a key no test or server uses
    url = f"redis://{REDIS_ADDRESS}/0"
    page_versions = versions.PageVersions(rt.keyring, url, rt.clock)

    async def read() -> tuple[int | None, int | None]:
        await page_versions.open_loop_client()
        try:
            return await page_versions.read(petition_id), await page_versions.read(petition_id, versions.CONTENT)
        finally:
            await page_versions.close_loop_client()

    # On a loop of its own thread: a browser test before this one in the same process leaves Playwright's loop
    # running on this thread, where asyncio.run refuses to start another.
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(asyncio.run, read()).result() == (0, 0)
    plain = redis.Redis.from_url(url)
    assert not plain.exists(versions.KEY_PREFIX + str(petition_id), versions.CONTENT_KEY_PREFIX + str(petition_id))
    plain.close()
