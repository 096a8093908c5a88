"""Test harness: a database built by the real migrations, each test rolled back, SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import fastapi.dependencies.utils as fastapi_dependencies
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import sessions as account_sessions
from app.core import crypto, migrations, security
from app.core.access import route_table
from app.core.cache import TTLCache
from app.core.clock import FrozenClock
from app.core.database import build_engine, get_db, get_sessionmaker
from app.core.logging import JsonFormatter
from app.core.security import Keyring, hash_password
from app.core.settings import Settings
from app.main import create_app
from app.models.accounts import Role, RoleGrant, User
from app.models.mail import OutboxMessage
from app.petitions import page_cache
from tests import key_pool
from tests.chromium import CHROMIUM, Chromium, chromium_browser
from tests.chromium import WATCHDOG_SECONDS as CHROMIUM_WATCHDOG_SECONDS
from tests.chromium import executable as chromium_executable

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
PASSWORD = "correct horse battery staple"
# Rows made directly through the models (factories, before any app is built) are sealed with the test keys.
crypto.install(Keyring(TEST_SECRET), None)
# Passwords hashed in this process (make_user, sign-ups through the in-process app) cost microseconds, not 0.4 s;
# servers started as processes of their own keep production's cost (tests/test_password_cost.py holds it).
security.use_password_cost(security.ARGON2_TEST_COST)
# Petitions that allow anonymity take their issuing and discussion keys from a pool built on a few generated primes
# (tests/key_pool.py): generating two 1024-bit keys per petition was about a tenth of the anonymous modules' time.
key_pool.install()
# FastAPI works out each route's parameters when an app first serves the route, and again for every app: about
# 2 s of CPU for our 230 routes (cProfile: `inspect.signature` evaluating string annotations, then a pydantic
# TypeAdapter per parameter). The suite builds an app for every distinct set of settings and every live server,
# about 70 in the modules without a browser. A function's signature does not change, and a parameter's analysis
# depends only on its name, annotation and default: each test process works each one out once (production builds
# one app per process). Anything unhashable is worked out every time.
_typed_signature = fastapi_dependencies.get_typed_signature
_analyze_param = fastapi_dependencies.analyze_param
_SIGNATURES: dict[Callable[..., Any], inspect.Signature] = {}
_PARAMETERS: dict[tuple[object, ...], fastapi_dependencies.ParamDetails] = {}


def _remembered_signature(call: Callable[..., Any]) -> inspect.Signature:
    try:
        return _SIGNATURES[call]
    except KeyError:
        signature = _SIGNATURES[call] = _typed_signature(call)
        return signature
    except TypeError:
        return _typed_signature(call)


def _remembered_parameter(
    *, param_name: str, annotation: Any, value: Any, path_param_names: set[str]
) -> fastapi_dependencies.ParamDetails:
    key = (param_name, annotation, value, param_name in path_param_names)
    try:
        return _PARAMETERS[key]
    except KeyError:
        details = _PARAMETERS[key] = _analyze_param(
            param_name=param_name, annotation=annotation, value=value, path_param_names=path_param_names
        )
        return details
    except TypeError:
        return _analyze_param(
            param_name=param_name, annotation=annotation, value=value, path_param_names=path_param_names
        )


@functools.cache
def _path_parameters(path: str) -> frozenset[str]:
    return frozenset(_path_param_names(path))


def _remembered_path_parameters(path: str) -> set[str]:
    """A path's parameter names (a regular expression over the path, once per route and dependency of every app:
    7 s of a run's profile)."""
    return set(_path_parameters(path))


_path_param_names = fastapi_dependencies.get_path_param_names
fastapi_dependencies.get_typed_signature = _remembered_signature
fastapi_dependencies.analyze_param = _remembered_parameter
fastapi_dependencies.get_path_param_names = _remembered_path_parameters


# Under pytest-xdist (`make test` runs two workers) each worker is a process with its own PostgreSQL database and
# its own Redis databases, so no test sees another worker's rows, keys or queues.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"... or "" when not under xdist
_WORKER_DATABASE: list[str] = []


def _worker_index() -> int:
    return int(XDIST_WORKER.removeprefix("gw")) if XDIST_WORKER else 0


def _postgresql_admin(url: str) -> Engine:
    return build_engine(
        make_url(url).set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )


def pytest_configure(config: pytest.Config) -> None:
    """In an xdist worker, TEST_DATABASE_URL is pointed at `<its database>_gw<n>`, made here through the postgres
    database and dropped at the end: every reader of the variable (scratch databases included, named after it)
    then stays within the worker's own."""
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not XDIST_WORKER or not base:
        return
    base = base.replace("postgresql://", "postgresql+psycopg://", 1) if base.startswith("postgresql://") else base
    url = make_url(base)
    database = f"{url.database}_{XDIST_WORKER}"
    os.environ["TEST_DATABASE_URL"] = url.set(database=database).render_as_string(hide_password=False)
    admin = _postgresql_admin(base)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        _WORKER_DATABASE.append(database)
    except Exception as error:  # noqa: BLE001 - PostgreSQL out of reach: its tests say so (fail in CI, skip here)
        logging.getLogger("tests").warning("could not make this worker's database %s: %s", database, error)
    finally:
        admin.dispose()


def _drop_databases() -> None:
    """This process's scratch databases (tests/server_process.py drops them through the worker's database), then
    the worker's database. From pytest_sessionfinish, not pytest_unconfigure: pytest-xdist reports a worker
    finished once its sessionfinish returns, and may end the worker's process while it unconfigures, which once
    left a worker's template and database behind."""
    scratch = sys.modules.get("tests.server_process")
    if scratch is not None:
        scratch.drop_scratch_databases()
    for database in _WORKER_DATABASE:
        admin = _postgresql_admin(os.environ["TEST_DATABASE_URL"])
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
    _WORKER_DATABASE.clear()


# The Redis databases the suite's modules use, one each (flushed by their fixtures). An xdist worker after the
# first takes four others: gw1 1-4, gw2 5-8; 0 is left to `make run`, and 9-10 are the last ones free.
REDIS_TEST_DATABASES = (11, 13, 14, 15)
# The Redis server the tests use: TEST_REDIS_ADDRESS (host:port) lets two runs of the suite side by side (a
# developer's and a second checkout's) each use a server of their own.
REDIS_ADDRESS = os.environ.get("TEST_REDIS_ADDRESS", "127.0.0.1:6379")


def redis_url(database: int) -> str:
    """The Redis URL for a module's database number, moved to this xdist worker's own range."""
    index = _worker_index()
    if index:
        if index > 2:
            raise pytest.UsageError("the Redis tests have databases for three xdist workers at most: use -n 3 or fewer")
        database = 1 + (index - 1) * len(REDIS_TEST_DATABASES) + REDIS_TEST_DATABASES.index(database)
    return f"redis://{REDIS_ADDRESS}/{database}"


DATABASES = ("sqlite", "postgresql")


@pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by their fixtures' parameters
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `one_database` run on one database only (SQLite, or the one the mark names): what they check
    does not depend on the database (tests/README.md, "Which database"), and running them twice cost about a
    third of the suite. Under pytest-xdist the slowest modules come first."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        # The session's `database_url`, or a module's own fixture over the two (a live server's scratch database).
        databases = [value for value in (callspec.params.values() if callspec else ()) if value in DATABASES]
        database = databases[0] if databases else None
        mark = item.get_closest_marker("one_database")
        only = (mark.args[0] if mark.args else "sqlite") if mark is not None else None
        if only is not None and only not in DATABASES:
            raise pytest.UsageError(f"{item.nodeid}: one_database takes 'sqlite' or 'postgresql', not {only!r}")
        (dropped if database is not None and only is not None and database != only else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    if not XDIST_WORKER:
        return
    # Under `--dist loadfile --no-loadscope-reorder` (make test) xdist hands modules to its workers in this order;
    # the sort keeps each module's own order.
    modules = Counter(item.path.name for item in items)
    items.sort(key=lambda item: (_SLOWEST_FIRST.get(item.path.name, len(_SLOWEST_FIRST)), -modules[item.path.name]))


# The modules that take longest, longest first; then the rest, those with most tests first (xdist's own order).
# A module runs whole on one worker, so a long one handed out last kept one worker busy while the other had
# finished: xdist's order by number of tests put these few-test, slow modules (a linkage day, a story through
# every page, servers killed and restarted) at the end. Seconds per module (set-ups included) from the quiet
# integration run of 2026-12-07 (junit times, 2 workers, 468 s in all).
_SLOWEST_FIRST = {
    name: rank
    for rank, name in enumerate(
        [
            "test_linkage.py",  # 46 s
            "test_browser_linking.py",  # 34 s
            "test_browser_ballots.py",  # 32 s
            "test_journeys.py",  # 31 s
            "test_no_js.py",  # 31 s, one test: a story through every page and form
            "test_browser_wallet_devices.py",  # 28 s on one database
            "test_authorization_matrix.py",  # 25 s
            "test_wallet_secret_nowhere.py",  # 24 s
            "test_browser_key_transparency.py",  # 22 s on one database
            "test_browser_anonymous_comments.py",  # 21 s
            "test_api_fuzz.py",  # 18 s
            "test_journeys_organizer_admin.py",  # 17 s
            "test_fault_tolerance.py",  # 17 s
            "test_browser_comments.py",  # 16 s
            "test_narrow_pages.py",  # 16 s
            "test_client.py",  # 15 s
            "test_browser_crash.py",  # 12 s, a pytest of its own
            "test_mail_outage.py",  # 11 s
        ]
    )
}


def missing(reason: str) -> NoReturn:
    """In CI a missing database or browser is a failure; on a developer's machine, a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: nothing may be skipped)")
    pytest.skip(reason)


def _prepare_postgresql(url: str) -> None:
    engine = build_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


# The test databases of this process, migrated once each, and their engines. Under pytest-xdist a worker runs a
# module's SQLite tests, then its PostgreSQL ones, so pytest sets the session's `database_url` up again at every
# switch, twice a module: migrating a database each time cost 1-3 s, about 200 times a run.
_DATABASES: dict[str, str] = {}
_ENGINES: dict[str, Engine] = {}


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param in _DATABASES:
        return _DATABASES[request.param]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        url = os.environ.get("TEST_DATABASE_URL", "")
        if not url:
            missing("TEST_DATABASE_URL is not set: PostgreSQL tests need a scratch database")
        if make_url(url).drivername == "postgresql":
            url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        _prepare_postgresql(url)
    migrations.upgrade(url)
    _DATABASES[request.param] = url
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Engine:
    if database_url not in _ENGINES:
        _ENGINES[database_url] = build_engine(database_url)
    return _ENGINES[database_url]


def pytest_sessionfinish(session: pytest.Session) -> None:
    for engine in _ENGINES.values():
        engine.dispose()
    _drop_databases()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture
def db(connection: Connection) -> Iterator[Session]:
    """A session for arranging and inspecting, inside the test's transaction."""
    with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as session:
        yield session


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "inprocess_worker": False,
        "base_url": "http://testserver",
        "allowed_email_domains": ["example.org", "example.com"],
        # Small issuing keys and no batching delay: the suite makes many petitions.
        "blind_key_bits": 1024,
        "anonymous_batch_seconds": 0,
    }
    values.update(overrides)
    # Settings read each of their fields from the environment and .env: 20 ms under load, for nearly every test.
    # Equal settings are built once per process and each caller gets a copy of its own (0.2 ms).
    key = (repr(sorted(values.items())), _settings_environment())
    built = _SETTINGS.get(key)
    if built is None:
        if len(_SETTINGS) >= 256:
            _SETTINGS.clear()
        built = _SETTINGS[key] = Settings(**values)  # type: ignore[arg-type]
    return built.model_copy(deep=True)


_SETTINGS: dict[tuple[str, tuple[object, ...]], Settings] = {}


def _settings_environment() -> tuple[object, ...]:
    """What Settings read besides their arguments: UNDERSIGNED_* variables and the working directory's .env."""
    variables = tuple(sorted((name, value) for name, value in os.environ.items() if name.startswith("UNDERSIGNED_")))
    try:
        dotenv = Path(".env").stat()
    except FileNotFoundError:
        return variables, os.getcwd(), None
    return variables, os.getcwd(), dotenv.st_mtime_ns, dotenv.st_size


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@functools.cache
def schema_app() -> FastAPI:
    """An app built for its route table and its OpenAPI schema only, never started: one per test process, since
    each app works out its 230 routes' parameters again (a second or two at collection, for each module that
    asked)."""
    return create_app(make_settings("sqlite://"))


def served_routes() -> tuple[dict[tuple[str, str], APIRoute], set[str]]:
    """Every (method, path) the app serves with its route, and the paths that are not ours (a copy to keep)."""
    handlers, others = _served_routes()
    return dict(handlers), set(others)


@functools.cache
def _served_routes() -> tuple[dict[tuple[str, str], APIRoute], set[str]]:
    return route_table(schema_app())


class _TestClock:
    """The clock of a shared app: it reads whichever FrozenClock the running test was given."""

    def __init__(self) -> None:
        self.target = FrozenClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.target.now()


# Building an app is cheap, but its first request is not: FastAPI works out every route's dependencies then
# (about 0.1 s for ours). Tests with the same settings share one app, re-bound to each test's connection and
# clock, with its per-process memory (rate limits, caches, overrides) reset: the suite would otherwise spend
# minutes on it.
_SHARED_APPS: dict[str, FastAPI] = {}


def _settings_key(settings: Settings) -> str:
    return settings.model_dump_json() + settings.secret_key.get_secret_value()


class _TestCache(TTLCache):
    """The app's memo within one test: a value stays until the app forgets it or the test ends (the harness
    clears it), whatever the wall clock says. On a busy machine a 10 s expiry ran out in the middle of a test
    and changed the number of queries a page ran."""

    def get(self, key: str, load: Callable[[], Any], *, ttl: float) -> Any:
        return super().get(key, load, ttl=math.inf)

    def get_shared(self, key: str, load: Callable[[], Any], *, ttl: float) -> Any:
        return super().get_shared(key, load, ttl=math.inf) if ttl else load()


def forget_earlier_requests(app: FastAPI) -> None:
    """The shared app's per-process memory as a new test finds it: no rate-limit hits, no cached values, and no
    shared copy of a petition page (petition ids come round again on SQLite, and a copy may hold another test's
    objects)."""
    app.state.runtime.limiter.reset()
    app.state.runtime.cache.clear()
    page_cache.copies_of(app).clear()


def build_test_app(settings: Settings, connection: Connection, clock: FrozenClock) -> FastAPI:
    """The app whose every request works inside the test's transaction (savepoints, rolled back at the end)."""
    key = _settings_key(settings)
    app = _SHARED_APPS.get(key)
    if app is None:
        app = create_app(settings, clock=_TestClock())
        object.__setattr__(app.state.runtime, "cache", _TestCache())  # Runtime is frozen for the app's own code
        if len(_SHARED_APPS) >= 16:
            _SHARED_APPS.pop(next(iter(_SHARED_APPS)))
        _SHARED_APPS[key] = app
    app.state.runtime.clock.target = clock
    forget_earlier_requests(app)

    def test_db() -> Iterator[Session]:
        session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    app.dependency_overrides.clear()
    app.dependency_overrides[get_db] = test_db
    # Streamed exports read after the request's unit of work, still inside the test's transaction; they only
    # read, and closing them leaves that transaction alone (a savepoint of theirs would end with the request's).
    app.dependency_overrides[get_sessionmaker] = lambda: functools.partial(
        Session, bind=connection, join_transaction_mode="rollback_only", expire_on_commit=False
    )
    return app


@pytest.fixture
def app(settings: Settings, connection: Connection, clock: FrozenClock) -> FastAPI:
    return build_test_app(settings, connection, clock)


@pytest.fixture
def rt(app: FastAPI):
    """The app's runtime (settings, clock, keys, mail templates) for arranging state through services."""
    return app.state.runtime


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def sessions(connection: Connection) -> sessionmaker[Session]:
    """Sessions on the test's connection, each in a savepoint of its own: what a job or batch that opens its own
    sessions (the worker, the anonymous batches, the log's flush) is handed in place of the app's."""
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@dataclass
class Browser:
    """A TestClient that behaves like a person's browser: it keeps cookies and sends CSRF tokens."""

    client: TestClient

    def csrf(self) -> str:
        return self.client.get("/api/v1/csrf").json()["csrf_token"]

    def get(self, url: str, **kwargs: object):
        return self.client.get(url, **kwargs)  # type: ignore[arg-type]

    def post(self, url: str, data: dict[str, str] | None = None, *, csrf: bool = True, **kwargs: object):
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf()
        return self.client.post(url, data=form, **kwargs)  # type: ignore[arg-type]

    def api(self, method: str, url: str, json: object | None = None, *, csrf: bool = True):
        headers = {"X-CSRF-Token": self.csrf()} if csrf and method.upper() not in ("GET", "HEAD") else {}
        return self.client.request(method, url, json=json, headers=headers)


@pytest.fixture
def browser(client: TestClient) -> Browser:
    return Browser(client)


@pytest.fixture
def new_browser(app: FastAPI) -> Iterator[object]:
    """Another person's browser against the same app (separate cookies)."""
    opened: list[TestClient] = []

    def open_browser() -> Browser:
        client = TestClient(app, base_url="http://testserver", follow_redirects=False)
        client.__enter__()
        opened.append(client)
        return Browser(client)

    yield open_browser
    for client in opened:
        client.__exit__(None, None, None)


def make_user(
    db: Session,
    *,
    email: str,
    name: str = "Test Worker",
    password: str | None = PASSWORD,
    verified: bool = True,
    roles: tuple[Role, ...] = (),
    now: datetime | None = None,
) -> User:
    now = now or datetime(2026, 11, 1, tzinfo=UTC)
    user = User(
        email=email,
        display_name=name,
        password_hash=hash_password(password) if password else None,
        email_verified_at=now if verified else None,
        created_at=now,
        roles=[],
    )
    for role in roles:
        user.roles.append(RoleGrant(role=role, granted_at=now))
    db.add(user)
    db.commit()
    return user


def sign_in_as(browser: Browser, db: Session, user: User) -> Browser:
    session_id = account_sessions.start(db=db, user=user, now=datetime(2026, 11, 24, 9, 0, tzinfo=UTC), days=30)
    db.commit()
    browser.client.cookies.set(account_sessions.SESSION_COOKIE, session_id, domain="testserver.local")
    return browser


def outbox(db: Session, to: str | None = None) -> list[OutboxMessage]:
    db.expire_all()
    statement = select(OutboxMessage).order_by(OutboxMessage.id)
    if to:
        # Addresses are sealed: filtered once opened.
        return [message for message in db.scalars(statement) if message.to_address == to]
    return list(db.scalars(statement))


def code_from(message: OutboxMessage) -> str:
    found = re.search(r"^\s+(\d{6})\s*$", message.body_text, re.MULTILINE)
    assert found, message.body_text
    return found.group(1)


def link_from(message: OutboxMessage) -> str:
    found = re.search(r"http://testserver(/\S+/[A-Za-z0-9_-]{20,})", message.body_text)
    assert found, message.body_text
    return found.group(1)


def count_rows(db: Session, table: str) -> int:
    db.expire_all()
    return int(db.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


class LogCapture(logging.Handler):
    """Collects log lines exactly as the server writes them (JSON), from our loggers and every other."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("httpx", "httpcore")):  # the test's own HTTP client
            self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def entries(self, level: str) -> list[dict[str, Any]]:
        """The lines of one level, read back from their JSON."""
        return [entry for entry in map(json.loads, self.lines) if entry["level"] == level]


def dated_by_the_hour(entry: dict[str, Any]) -> bool:
    """A log line's time keeps the hour only (logging.COARSE_TIME)."""
    return str(entry["time"]).endswith(":00:00.000+00:00")


@pytest.fixture
def server_logs(app: FastAPI) -> Iterator[LogCapture]:
    # After the app is built: building it configures logging.
    with capture_logs() as capture:
        yield capture


@contextmanager
def capture_logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    loggers = [logging.getLogger(), logging.getLogger("undersigned")]
    previous = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
    yield capture
    for logger, level in previous:
        logger.removeHandler(capture)
        logger.setLevel(level)


# This process's one Chromium (tests/chromium.py), once a test asked for it, and the browser test whose watchdog
# waits for the browser to be launched.
_CHROMIUM: list[Chromium] = []
_CHROMIUM_UNWATCHED: list[str] = []
_CHROMIUM_LOG_FROM = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """One browser per test process (each xdist worker has its own); each test opens contexts of its own."""
    if not chromium_executable():
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError as error:
        missing(f"Playwright for Python is not installed ({error}); pip install -e '.[dev]'")
    from playwright.sync_api import expect

    # Expectations wait as long as actions do (the contexts' set_default_timeout, 10 s), not Playwright's 5 s: on
    # a busy 2-core machine a page's first answer from the live server took 4-5 s, and three tests failed so.
    expect.set_options(timeout=10_000)
    with chromium_browser(tmp_path_factory.mktemp("chromium") / "chromium.log") as browser:
        _CHROMIUM.append(browser)
        if _CHROMIUM_UNWATCHED:
            browser.watch(CHROMIUM_WATCHDOG_SECONDS, _CHROMIUM_UNWATCHED.pop())
        try:
            yield browser
        finally:
            _CHROMIUM.clear()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A browser test starts on a live browser (one that died failed its own test and is launched again), under
    a watchdog that stops the browser if the test outlasts CHROMIUM_WATCHDOG_SECONDS, so that a browser no longer
    answering fails the test instead of leaving the suite waiting."""
    if "chromium" not in getattr(item, "fixturenames", ()):
        return
    if not _CHROMIUM:  # launched by this test's fixtures, which then start the watchdog
        item.stash[_CHROMIUM_LOG_FROM] = 0
        _CHROMIUM_UNWATCHED[:] = [item.nodeid]
        return
    browser = _CHROMIUM[0]
    browser.relaunch_if_dead()
    browser.recordings.clear()
    item.stash[_CHROMIUM_LOG_FROM] = browser.log_size()
    browser.watch(CHROMIUM_WATCHDOG_SECONDS, item.nodeid)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    _CHROMIUM_UNWATCHED.clear()
    if _CHROMIUM_LOG_FROM in item.stash and _CHROMIUM:
        _CHROMIUM[0].unwatch()


def _chromium_log_section(item: pytest.Item) -> tuple[str, str] | None:
    """What Chromium logged during a failed browser test, and whether it died or was stopped meanwhile."""
    if _CHROMIUM_LOG_FROM not in item.stash or not _CHROMIUM:
        return None
    browser = _CHROMIUM[0]
    if browser.killed_for:
        state = f"stopped by the watchdog: {browser.killed_for}"
    elif not browser.alive:
        state = "it died during this test"
    else:
        state = "still running"
    return f"Chromium's log ({state})", browser.log_tail(since=item.stash[_CHROMIUM_LOG_FROM]) or "(nothing)"


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    if report.failed:
        section = _chromium_log_section(item)
        if section:
            report.sections.append(section)
        if _CHROMIUM_LOG_FROM in item.stash and _CHROMIUM and _CHROMIUM[0].recordings:
            report.sections.append(("What the pages asked and said", _CHROMIUM[0].recorded()))
    return report


def call_failed(request: pytest.FixtureRequest) -> bool:
    """In a fixture's teardown: whether the test itself failed (or never ran), for leaving evidence behind."""
    return request.node.stash.get(_CALL_FAILED, True)


def screenshot_if_failed(request: pytest.FixtureRequest, pages: list[object], folder: Path) -> None:
    """The last view of each page when the test failed, for looking at afterwards (a screenshot costs a second
    under load, and a passing test needs none). A crashed page has nothing to show."""
    if not call_failed(request):
        return
    from playwright.sync_api import Error

    for index, page in enumerate(pages):
        path = folder / f"page-{index}.png"
        try:
            page.screenshot(path=str(path), full_page=True, timeout=10_000)  # type: ignore[attr-defined]
            print(f"screenshot of the last page: {path}")
        except Error as error:
            print(f"no screenshot of page {index}: {error}")


def sign_in_demo(page, local_part: str) -> None:
    """Sign `page` in as a demo account through the sign-in form, as a person would."""
    from app.demo import DEMO_PASSWORD

    page.goto("/signin")
    page.locator("main").get_by_label("Work email address").fill(f"{local_part}@example.org")
    page.locator("main").get_by_label("Password").fill(DEMO_PASSWORD)
    page.locator("main").get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


@pytest.fixture
def person(request: pytest.FixtureRequest, chromium, tmp_path: Path) -> Iterator[object]:
    """Open a browser on the module's `server` fixture (a tests/live_server.py LiveServer), signed in as a demo
    account (or not, with None). Its page is blank until the test opens one: a test that needs the home page
    signing in lands on (where the wallet starts) opens it. Signed in by a session cookie made on the server
    (live_server.session_cookie), not through the form: the sign-in page, its POST and the home page cost Chromium
    and the server 0.3 s of CPU per person, 0.6 s with the home page (7 demo accounts, measured). tests/test_browser.py,
    the narrow pages and the polls' pages still sign in through the form (`sign_in_demo`)."""
    from tests.live_server import session_cookie

    server = request.getfixturevalue("server")
    contexts = []

    def open_as(local_part: str | None):
        context = chromium.new_context(base_url=server.base_url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        if local_part:
            context.add_cookies([session_cookie(server, f"{local_part}@example.org")])
        return context.new_page()

    yield open_as
    screenshot_if_failed(request, [page for context in contexts for page in context.pages], tmp_path)
    for context in contexts:
        context.close()


@contextmanager
def counting_statements(connection: Connection) -> Iterator[list[str]]:
    """Every SQL statement sent on the test's engine while the block runs (for query-count checks)."""
    statements: list[str] = []

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(connection.engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        event.remove(connection.engine, "before_cursor_execute", before_cursor_execute)


def project_root() -> Path:
    return Path(__file__).resolve().parents[1]
