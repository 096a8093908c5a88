"""Migrations build the schema the models describe, on SQLite and PostgreSQL, and can be reversed."""

from alembic import command
from sqlalchemy import inspect

from app.core import migrations
from app.core.database import build_engine
from app.models import Base


def test_upgrade_head_then_check_reports_no_drift(database_url: str) -> None:
    # database_url is already at head (the fixture runs `upgrade head`); check compares it to the models.
    migrations.check(database_url)
    engine = build_engine(database_url)
    try:
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    migrations.upgrade(url)
    command.downgrade(migrations.alembic_config(url), "base")
    engine = build_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    migrations.upgrade(url)
    migrations.check(url)


def test_search_keeps_working_after_every_migration(tmp_path) -> None:
    """On SQLite a batch migration rebuilds a table and drops its triggers: the full-text index of petitions must
    still follow new rows at head (a rebuilt `petitions` once left search blind to every new petition)."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'search.db'}"
    migrations.upgrade(url)
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            triggers = set(connection.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
        assert {"petitions_fts_insert", "petitions_fts_delete", "petitions_fts_update"} <= triggers
    finally:
        engine.dispose()
