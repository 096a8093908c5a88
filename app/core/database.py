"""Engine, sessions and the declarative base shared by every feature."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy import (
    Connection,
    CursorResult,
    DateTime,
    Engine,
    Enum,
    MetaData,
    Result,
    Table,
    TableClause,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

WRITE_INTENT = "undersigned_write_intent"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def str_enum(enum: type[StrEnum], length: int) -> Enum:
    """A StrEnum column stored as before it was typed: its values in a VARCHAR(length), with no database enum type
    and no CHECK constraint, so the schema (and `alembic check`) is unchanged; rows read back as members."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


def insert_for(dialect_name: str, table: TableClause | type[Base]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ON CONFLICT, for one of the two databases we run on."""
    return postgresql.insert(table) if dialect_name == "postgresql" else sqlite.insert(table)


def table_of(model: type[Base]) -> Table:
    """A mapped class's Table, for Core statements (`Model.__table__` is typed as any FromClause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def rows_changed(result: Result[*tuple[Any, ...]]) -> int:
    """How many rows an UPDATE or DELETE changed: Session.execute answers one with a CursorResult, which has the
    count, though it is typed as answering any statement with a Result, which has not."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def build_engine(url: str, **kwargs: object) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite opens transactions on its own and so breaks SAVEPOINT; let SQLAlchemy emit BEGIN instead.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # No pre-ping (a round trip on every checkout); a connection the server dropped fails once with a
    # disconnect error, the pool is then refreshed, and that request answers 503.
    if "poolclass" not in kwargs:
        kwargs = {"pool_size": 5, "max_overflow": 10, "pool_recycle": 1800, **kwargs}
    # No JIT: PostgreSQL compiles a query whose estimated cost passes `jit_above_cost`, and an estimate is not the
    # work. A member's page at 1,000,000 signatures, one statement that reads a few rows in a millisecond, was
    # estimated at 456,000 and spent 36 ms being compiled (tests/test_engine_no_jit.py, docs/benchmarks.md).
    return create_engine(url, connect_args={"options": "-c jit=off"}, **kwargs)


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # A deleted or updated row's bytes are overwritten with zeros instead of left in a free page, where a copy
    # of the file would still show a withdrawn signature's token or a forgotten account (many builds default
    # to off). It holds for the WAL once checkpointed; docs/deploy.md says what PostgreSQL keeps instead.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # A transaction that will write takes the write lock up front (IMMEDIATE): in WAL mode a reader that later
    # writes after another writer committed fails at once instead of waiting its turn.
    immediate = connection.get_execution_options().get(WRITE_INTENT, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def build_sessionmaker(engine: Engine, *, writes: bool = False) -> sessionmaker[Session]:
    """Sessions on `engine`; `writes=True` for work that writes (jobs, commands): on SQLite it takes the write
    lock when it begins, like a request that may write."""
    return sessionmaker(
        bind=engine.execution_options(**{WRITE_INTENT: True}) if writes else engine, expire_on_commit=False
    )


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One unit of work per request. The route class ends it in the handler's thread (app/core/routing.py):
    committed, or rolled back on an error status; here it is rolled back when the handler raises, and closed.

    Opening a session does no I/O (its connection is checked out by the first statement, in a worker thread),
    so only the end needs a hop to a worker thread. A request that may write uses the write-intent sessions
    (BEGIN IMMEDIATE on SQLite).
    """
    state = request.app.state
    session = (state.sessionmaker if request.method in READ_METHODS else state.write_sessionmaker)()
    try:
        yield session
    except BaseException:
        await _end(session, commit=False)
        raise
    await _end(session, commit=True)


async def _end(session: Session, *, commit: bool) -> None:
    if not session.in_transaction():  # the route ended it already (app/core/routing.py), or it never began
        session.close()
        return
    # This request holds a connection (and on SQLite maybe the write lock) until it ends, so ending must not
    # queue behind the shared worker threads, which may all be busy waiting for that very connection: its own
    # limiter, as FastAPI does for the exit of generator dependencies; shielded so it always runs.
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(
            functools.partial(_finish, session, commit=commit), limiter=anyio.CapacityLimiter(1)
        )


def read_without_transaction(db: Session) -> None:
    """Run the session's next statements outside a transaction (autocommit), until `commit_now` (in
    app/core/routing.py): for a dependency's single read on PostgreSQL, where a transaction costs two round
    trips of its own."""
    _isolate(db, "AUTOCOMMIT")


def read_consistently(db: Session) -> None:
    """Make the session's next statements read one snapshot (REPEATABLE READ on PostgreSQL), for a report made
    of several queries whose numbers must agree while signatures keep arriving."""
    _isolate(db, "REPEATABLE READ")


def _isolate(db: Session, level: str) -> None:
    # PostgreSQL only (SQLite's transactions cost no round trip and already read one snapshot), and only on a
    # session that has not begun and owns its connections (not a test's, which works in a savepoint).
    bind = db.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql" and not db.in_transaction():
        db.connection(execution_options={"isolation_level": level})


def _finish(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
    finally:
        session.close()  # gives the connection back, rolling back whatever was not committed


async def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    """Sessions for work that outlives the request's unit of work, such as a streamed export."""
    return request.app.state.sessionmaker


SessionmakerDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]

# Marks a session on the read replica (Session.info): a replica refuses writes, so code that would write on read
# (closing a petition past its deadline) leaves it to the primary's next request or the worker's job.
ON_REPLICA = "undersigned_on_replica"


def on_replica(db: Session) -> bool:
    return bool(db.info.get(ON_REPLICA))


def build_replica_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, info={ON_REPLICA: True})


async def get_public_db(
    request: Request, db: Annotated[Session, Depends(get_db, scope="function")]
) -> AsyncIterator[Session]:
    """The session for a public read that may lag the primary by a moment (the tally, the signature log): on the
    read replica when one is configured (settings.database_replica_url), else the request's own session.

    Only for reads (GET, HEAD): anything else gets the request's session on the primary. Whoever is signed in is
    still read from the primary (`load_user` takes `get_db`), so a new session is never refused by a replica that
    has not seen it yet.
    """
    replica = request.app.state.replica_sessionmaker
    if replica is None or request.method not in READ_METHODS:
        yield db
        return
    session = replica()
    try:
        yield session
    finally:
        await _end(session, commit=False)


async def get_public_sessionmaker(request: Request, sessions: SessionmakerDep) -> sessionmaker[Session]:
    """Sessions of their own for public reads (log proofs and tiles): the replica's when there is one."""
    return request.app.state.replica_sessionmaker or sessions


PublicSessionDep = Annotated[Session, Depends(get_public_db, scope="function")]
PublicSessionmakerDep = Annotated[sessionmaker[Session], Depends(get_public_sessionmaker)]

# scope="function": commit before the response is sent, so a failed commit is an error response,
# never a success page for a write that did not happen.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
