"""Engine, sessions and the declarative base shared by every feature."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

WRITE_INTENT = "undersigned_write_intent"

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
    type_annotation_map = {datetime: UTCDateTime()}


def upsert_insert(db: Session, model):  # type: ignore[no-untyped-def]
    """An INSERT that supports ON CONFLICT on both databases we run on."""
    if db.get_bind().dialect.name == "postgresql":
        return postgresql_insert(model)
    return sqlite_insert(model)


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
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection) -> None:  # type: ignore[no-untyped-def]
    # A transaction that will write takes the write lock up front (IMMEDIATE): in WAL mode a reader that later
    # writes after another writer committed fails at once instead of waiting its turn.
    immediate = connection.get_execution_options().get(WRITE_INTENT, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def build_sessionmaker(engine: Engine, *, writes: bool = False) -> sessionmaker[Session]:
    """Sessions on `engine`; `writes=True` for work that writes (jobs, commands): on SQLite it takes the write
    lock when it begins, like a request that may write."""
    return sessionmaker(bind=engine.execution_options(**{WRITE_INTENT: True}) if writes else engine,
                        expire_on_commit=False)


def get_db(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed when the handler returns, rolled back when it raises."""
    session = request.app.state.sessionmaker()
    try:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            session.connection(execution_options={WRITE_INTENT: True})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit before the response is sent, so a failed commit is an error response,
# never a success page for a write that did not happen.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
