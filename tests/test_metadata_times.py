"""Rows tied to an account, checkpoints and audit entries keep the hour, not the moment.

An outside audit matched anonymous signatures and comments with the microsecond of a sign-in, the minute of
a checkpoint and the millisecond of a request log line. Everything here runs at 09:23:17.123456 and must
keep 09:00 (or, for a one-time code's deadline, a five-minute mark that says no more than the hour does).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.audit import service as audit
from app.core.clock import FrozenClock, rounded_up, to_the_hour
from app.core.runtime import Runtime
from app.log import checkpoint as notes
from app.log import service as signature_log
from app.models.accounts import OneTimeCode, Role, RoleGrant, User, UserSession, address_lookup
from app.models.audit import AuditEntry
from app.models.log import LogCheckpoint, LogCosignature
from tests import factories
from tests.conftest import PASSWORD, Browser, build_test_app, code_from, make_settings, make_user, outbox, sign_in_as

NOW = datetime(2026, 11, 24, 9, 23, 17, 123456, tzinfo=UTC)
HOUR = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ADDRESS = "nia.hart@example.org"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def test_the_hour_and_a_deadline_rounded_up() -> None:
    assert to_the_hour(NOW) == HOUR
    assert rounded_up(NOW, timedelta(minutes=5)) == HOUR + timedelta(minutes=25)
    assert rounded_up(HOUR + timedelta(minutes=25), timedelta(minutes=5)) == HOUR + timedelta(minutes=25)
    assert rounded_up(HOUR + timedelta(minutes=55, microseconds=1), timedelta(minutes=5)) == HOUR + timedelta(hours=1)


def sign_up_and_verify(browser: Browser, db: Session) -> User:
    browser.post("/signup", {"email": ADDRESS, "display_name": "Nia Hart", "password": PASSWORD})
    [mail] = outbox(db, to=ADDRESS)
    assert browser.post("/verify", {"email": ADDRESS, "code": code_from(mail)}).status_code == 303
    db.expire_all()
    return db.scalars(select(User).where(address_lookup(ADDRESS))).one()


def test_an_account_its_codes_and_its_sessions_keep_the_hour(browser: Browser, db: Session, settings) -> None:
    user = sign_up_and_verify(browser, db)
    assert user.created_at == HOUR and user.email_verified_at == HOUR
    (code,) = db.scalars(select(OneTimeCode).where(OneTimeCode.user_id == user.id))
    assert code.created_at == HOUR and code.used_at == HOUR
    # The deadline: at least the promised minutes, on a five-minute mark.
    assert code.expires_at == rounded_up(NOW + timedelta(minutes=settings.code_minutes), timedelta(minutes=5))
    (session,) = db.scalars(select(UserSession).where(UserSession.user_id == user.id))
    assert session.created_at == HOUR and session.expires_at == HOUR + timedelta(days=settings.session_days)

    browser.post("/signout")
    assert browser.post("/signin", {"email": ADDRESS, "password": PASSWORD}).status_code == 303
    db.expire_all()
    assert {row.created_at for row in db.scalars(select(UserSession).where(UserSession.user_id == user.id))} == {HOUR}


def test_a_replaced_code_and_a_personal_address_keep_the_hour(browser: Browser, db: Session) -> None:
    user = sign_up_and_verify(browser, db)
    browser.post("/account/notification-email", {"notification_email": "nia@home.example"})
    browser.post("/account/notification-email", {"notification_email": "nia@home.example"})  # replaces the first
    [_first, second] = outbox(db, to="nia@home.example")
    browser.post("/account/notification-email/verify", {"code": code_from(second)})
    db.expire_all()
    assert db.get_one(User, user.id).notification_email_verified_at == HOUR
    codes = list(db.scalars(select(OneTimeCode).where(OneTimeCode.user_id == user.id)))
    assert len(codes) == 3 and {code.used_at for code in codes} == {HOUR}
    assert {code.created_at for code in codes} == {HOUR}


def test_sessions_and_codes_still_expire_when_they_should(
    browser: Browser, db: Session, clock: FrozenClock, settings
) -> None:
    browser.post("/signup", {"email": ADDRESS, "display_name": "Nia Hart", "password": PASSWORD})
    [mail] = outbox(db, to=ADDRESS)
    clock.advance(timedelta(minutes=settings.code_minutes + 5))  # past any five-minute rounding
    assert browser.post("/verify", {"email": ADDRESS, "code": code_from(mail)}).status_code == 410

    user = make_user(db, email="kai@example.org")
    sign_in_as(browser, db, user)  # a session opened at 09:00 for 30 days
    clock.advance(timedelta(days=30) - (clock.now() - HOUR) - timedelta(seconds=1))
    assert browser.get("/account").status_code == 200
    clock.advance(timedelta(seconds=2))
    assert browser.get("/account").status_code == 303, "expired: the account page asks to sign in"


def test_a_role_granted_keeps_the_hour(browser: Browser, db: Session) -> None:
    admin = make_user(db, email="root@example.org", password=None, roles=(Role.admin,))
    worker = factories.worker(db)
    sign_in_as(browser, db, admin)
    assert browser.post(f"/admin/users/{worker.id}/roles", {"role": "moderator"}).status_code == 303
    db.expire_all()
    grant = db.scalars(select(RoleGrant).where(RoleGrant.user_id == worker.id)).one()
    assert grant.granted_at == HOUR


# -- the audit log ---------------------------------------------------------------------------------------------


def test_audit_entries_keep_the_hour_and_the_chain_still_verifies(db: Session, rt: Runtime, clock: FrozenClock) -> None:
    actor = make_user(db, email="root@example.org", password=None, roles=(Role.admin,))
    audit.record(db=db, rt=rt, actor=actor, action="export.created", subject="petition 1", detail={"kind": "signers"})
    clock.advance(timedelta(minutes=1, seconds=3))
    audit.record(db=db, rt=rt, actor=None, action="keys.rotated", subject="personal data key 2")
    db.commit()
    entries = list(db.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    assert [entry.at for entry in entries] == [HOUR, HOUR]
    result = audit.verify(db=db)
    assert result.intact and result.entries == 2


def test_undersigned_audit_verify_passes_on_hour_entries(tmp_path, monkeypatch) -> None:
    """Through the command line, on the system clock, with a database of its own (the commands commit)."""
    from app.cli import cli
    from app.core.database import build_engine

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("UNDERSIGNED_DATABASE_URL", url)
    monkeypatch.setenv("UNDERSIGNED_ENVIRONMENT", "test")
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    for address in ("boss@example.org", "deputy@example.org"):
        created = runner.invoke(cli, ["users", "create-admin", address, "--no-password"])
        assert created.exit_code == 0, created.output
    verified = runner.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0 and "intact: 2 entries" in verified.output
    engine = build_engine(url)
    with Session(engine) as db:
        assert all(at == to_the_hour(at) for at in db.scalars(select(AuditEntry.at)))
    engine.dispose()


# -- the signature log -----------------------------------------------------------------------------------------

WITNESS = "union.example.org"
WITNESS_KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def witnessed_rt(database_url: str, connection: Connection, clock: FrozenClock) -> Runtime:
    settings = make_settings(database_url, log_witnesses=[notes.verifier_key(WITNESS, WITNESS_KEY.public_key())])
    return build_test_app(settings, connection, clock).state.runtime


def test_checkpoints_and_cosignatures_keep_the_hour(
    new_browser: Callable[[], Browser], db: Session, connection: Connection, witnessed_rt: Runtime
) -> None:
    rt = witnessed_rt
    petition = factories.open_petition(db, rt)
    sign_in_as(new_browser(), db, factories.worker(db)).api(
        "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}
    )
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    assert signature_log.flush(sessions=sessions, rt=rt) == 1
    db.expire_all()
    checkpoints = list(db.scalars(select(LogCheckpoint).where(LogCheckpoint.petition_id == petition.id)))
    assert [row.size for row in checkpoints] == [1, 2] and {row.created_at for row in checkpoints} == {HOUR}

    latest = signature_log.latest_checkpoint(db=db, petition_id=petition.id)
    line = notes.cosign(latest.note, WITNESS, WITNESS_KEY).strip()  # type: ignore[union-attr]
    signature_log.cosign(db=db, rt=rt, petition_id=petition.id, size=2, line=line)
    db.commit()
    db.expire_all()
    (cosignature,) = db.scalars(select(LogCosignature).where(LogCosignature.petition_id == petition.id))
    assert cosignature.created_at == HOUR
