"""Alembic environment: one set of migrations for SQLite (batch mode) and PostgreSQL."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool

from app.core.crypto import Sealed
from app.core.database import UTCDateTime, build_engine
from app.core.settings import Settings
from app.models import Base
from app.petitions import search

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    return (
        config.attributes.get("database_url")
        or context.get_x_argument(as_dictionary=True).get("database_url")
        or Settings().database_url
    )


def render_item(type_: str, obj: object, autogen_context) -> str | bool:  # type: ignore[no-untyped-def]
    """Render our UTC timestamp and sealed types as the plain column types they are in the database."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, Sealed):
        return "sa.LargeBinary()"
    return False


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave out what the models do not describe on purpose: the full-text search tables and index."""
    return not search.is_search_object(name)


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = build_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
        include_name=include_name,
    )
    # Batch mode rebuilds a SQLite table by copying it and dropping the original: with foreign keys on,
    # dropping `users` would cascade to (or be refused by) every table pointing at it. They are switched off
    # for the migration, on the driver's connection outside any transaction (SQLite ignores the pragma inside
    # one), and checked after it.
    raw = connection.connection.driver_connection if connection.dialect.name == "sqlite" else None
    if raw is not None:
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        with context.begin_transaction():
            context.run_migrations()
        if raw is not None:
            broken = raw.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows pointing at nothing: {broken[:5]}")
    finally:
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
