"""A real uvicorn server in a background thread, for tests that drive a real browser."""

from __future__ import annotations

import functools
import json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI

from app.core.clock import Clock
from app.core.settings import Settings
from app.main import create_app

if TYPE_CHECKING:
    from playwright._impl._api_structures import SetCookieParam

SECRET = "a-test-secret-key-long-enough-0123456789"


@functools.cache
def tls() -> ssl.SSLContext:
    """The one TLS context of this process's httpx2 test clients (their verify=). They talk plain HTTP to
    127.0.0.1, but a client made without a context loads the CA bundle: 0.05-0.2 s a client on the busy machine,
    and some tests make hundreds (the 200 signers of tests/test_concurrency.py spent 40 s of their 80 s on it)."""
    return ssl.create_default_context()


def reserve_port(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on a free port; handed to uvicorn so no other process can take the port meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


@dataclass
class LiveServer:
    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket
    base_url: str

    @property
    def app(self) -> FastAPI:
        """The app served (uvicorn's config types it as any ASGI application)."""
        app = self.server.config.app
        assert isinstance(app, FastAPI)
        return app

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()
        if self.thread.is_alive():
            raise RuntimeError("the live server did not stop in time")


def start(app: FastAPI, sock: socket.socket, *, timeout: float = 10.0) -> LiveServer:
    """Serve `app` on the reserved socket and wait until /healthz answers."""
    host, port = sock.getsockname()[:2]
    # Keep-alive well past uvicorn's 5 s: tests open many clients first and use them later, and a connection
    # the server closes just as a client reuses it fails that request ("Server disconnected").
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ws="none",
        loop="asyncio",
        http="h11",
        timeout_keep_alive=120,
    )
    server = uvicorn.Server(config)
    # uvicorn only installs signal handlers on the main thread, so running it in a thread is safe.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True)
    thread.start()
    live = LiveServer(server=server, thread=thread, sock=sock, base_url=f"http://{host}:{port}")

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(f"{live.base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return live
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if not thread.is_alive() or time.monotonic() > deadline:
            live.stop()
            raise RuntimeError(f"the live server at {live.base_url} did not answer /healthz within {timeout}s")
        time.sleep(0.05)


class ShiftedClock:
    """The real time, moved on by the test (`ahead`): an hour passes for the server in one line."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead


def serve(database: Path, *, clock: Clock | None = None, **overrides: object) -> LiveServer:
    """Migrate a SQLite file and serve the app on it in the test environment (mailbox on, no SMTP); on `clock` if
    given (a ShiftedClock), else the system's."""
    from tests.server_process import migrated_sqlite

    url = migrated_sqlite(database)
    sock = reserve_port()
    port = sock.getsockname()[1]
    values: dict[str, object] = {
        "environment": "test",
        "database_url": url,
        "secret_key": SECRET,
        "inprocess_worker": False,
        "base_url": f"http://127.0.0.1:{port}",
        "allowed_email_domains": ["example.org"],
        "blind_key_bits": 1024,
        "anonymous_batch_seconds": 0,
    }
    values.update(overrides)
    return start(create_app(Settings(**values), clock=clock), sock)  # type: ignore[arg-type]


def serve_demo(database: Path, *, clock: Clock | None = None, **overrides: object) -> LiveServer:
    """`serve`, with the demo organization seeded (accounts for every role, petitions in several states)."""
    from app import demo

    live = serve(database, clock=clock, **overrides)
    app = live.app
    demo.seed(sessions=app.state.sessionmaker, rt=app.state.runtime)
    return live


@contextmanager
def demo_on_scratch(kind: str, folder: Path, name: str, **overrides: object) -> Iterator[LiveServer]:
    """The demo organization served on a database of its own: a SQLite file in `folder`, or a scratch PostgreSQL
    database (`kind` "postgresql", tests/server_process.scratch_database), dropped afterwards."""
    from app import demo
    from tests.server_process import scratch_database

    with scratch_database(kind, folder, name) as url:
        sock = reserve_port()
        values: dict[str, object] = {
            "environment": "test",
            "database_url": url,
            "secret_key": SECRET,
            "inprocess_worker": False,
            "base_url": f"http://127.0.0.1:{sock.getsockname()[1]}",
            "allowed_email_domains": ["example.org"],
            "blind_key_bits": 1024,
        }
        values.update(overrides)
        live = start(create_app(Settings(**values)), sock)  # type: ignore[arg-type]
        try:
            app = live.app
            demo.seed(sessions=app.state.sessionmaker, rt=app.state.runtime)
            yield live
        finally:
            live.stop()


def session_cookie(live: LiveServer, email: str) -> SetCookieParam:
    """A session of the account with this address, opened as signing in opens one (app/accounts/sessions.py), as
    the cookie a browser context takes (`add_cookies`). For browser tests that are not about signing in: the form
    costs two page loads and a password check. The journeys and tests/test_browser.py still sign in through it."""
    from app.accounts import sessions
    from app.accounts.service.addresses import get_by_email

    app = live.app
    rt = app.state.runtime
    # A writing session (BEGIN IMMEDIATE on SQLite): a plain one read first, then found the server had written
    # meanwhile, and SQLite refused its insert at once ("database is locked").
    with app.state.write_sessionmaker() as db, db.begin():
        user = get_by_email(db=db, email=email)
        assert user is not None and user.is_verified, f"no verified account {email} on this server"
        session_id = sessions.start(db=db, user=user, now=rt.clock.now(), days=rt.settings.session_days)
    # What sessions.set_cookie sets.
    return {
        "name": sessions.SESSION_COOKIE,
        "value": session_id,
        "url": live.base_url,
        "httpOnly": True,
        "sameSite": "Lax",
        "secure": rt.settings.secure_cookies,
    }


def get_json(live: LiveServer, path: str, *, timeout: float = 60.0) -> Any:
    """A GET as any outside reader makes it: no cookies, no proxy; `timeout` seconds at most."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(live.base_url + path, timeout=timeout) as reply:
        return json.loads(reply.read())


def petition_url(live: LiveServer, title: str) -> str:
    """The address of the open petition with this title (the demo organization's, say)."""
    listing = get_json(live, "/api/v1/petitions?state=open")
    (petition,) = [item for item in listing["items"] if item["title"] == title]
    return f"{live.base_url}/petitions/{petition['id']}"
