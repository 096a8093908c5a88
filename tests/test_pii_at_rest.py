"""Addresses, names and mail are sealed at rest, found through blind indexes, and re-sealed by key rotation."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest
from pydantic import ValidationError
from sqlalchemy import LargeBinary, create_engine, select, text, type_coerce
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app.audit import service as audit
from app.ballots import keys as ballot_keys
from app.cli import cli
from app.core import crypto, migrations
from app.core.database import build_engine
from app.core.settings import Settings
from app.models.accounts import OneTimeCode, User, address_lookup
from app.models.anonymous import DiscussionKey, IssuingKey, SignerKey
from app.models.audit import AuditEntry
from app.models.ballots import Ballot
from app.models.mail import OutboxMessage
from app.models.signatures import Invalidation
from app.petitions import issuing_keys
from app.privacy import rotation
from tests import ballot_helpers, factories
from tests.conftest import PASSWORD, TEST_SECRET, Browser, make_user, outbox

ADDRESS, NAME = "ines.quarry@example.org", "Ines Quarry"


def raw(db, column) -> list[bytes]:
    """What the database itself holds in a sealed column."""
    return [bytes(value) for value in db.scalars(select(type_coerce(column, LargeBinary))) if value is not None]


def test_a_sign_up_leaves_no_address_or_name_in_the_tables(browser: Browser, db) -> None:
    assert browser.post("/signup", {"email": ADDRESS, "display_name": NAME, "password": PASSWORD}).status_code == 303
    [mail] = outbox(db, to=ADDRESS)
    assert NAME in mail.body_text or "code" in mail.body_text, "the model reads the mail as text"

    stored = b"".join(
        b"".join(raw(db, column))
        for column in (
            User.email,
            User.display_name,
            OneTimeCode.sent_to,
            OneTimeCode.pending_display_name,
            OutboxMessage.to_address,
            OutboxMessage.subject,
            OutboxMessage.body_text,
        )
    )
    assert stored and ADDRESS.encode() not in stored and b"Ines" not in stored and b"Quarry" not in stored
    user = db.scalar(select(User).where(address_lookup(ADDRESS)))
    assert user.email == ADDRESS and user.email_index != ADDRESS and len(user.email_index) == 64
    assert db.scalar(select(User).where(address_lookup("INES.quarry@example.org"))) is user, "case does not matter"


def test_sql_cannot_compare_a_sealed_column(db) -> None:
    with pytest.raises(TypeError, match="blind index"):
        select(User).where(User.email == ADDRESS)
    assert db.scalar(select(User).where(User.notification_email.is_(None))) is None, "IS NULL still works"


def test_a_ciphertext_copied_to_another_column_does_not_open(db) -> None:
    make_user(db, email=ADDRESS, name=NAME)
    db.commit()
    [sealed_address] = raw(db, User.email)
    assert crypto.open_sealed(sealed_address, context="users.email") == ADDRESS
    with pytest.raises(crypto.SealingError):
        crypto.open_sealed(sealed_address, context="users.display_name")
    tampered = sealed_address[:-1] + bytes([sealed_address[-1] ^ 1])
    with pytest.raises(crypto.SealingError):
        crypto.open_sealed(tampered, context="users.email")


@pytest.mark.parametrize(
    "configured, message",
    [
        ("k2", "id:base64key"),
        ("K2:" + base64.b64encode(os.urandom(32)).decode(), "id:base64key"),
        ("k2:not base64!", "not base64"),
        ("k2:" + base64.b64encode(b"short").decode(), "32 bytes"),
        ("k2:{0},k2:{0}".format(base64.b64encode(os.urandom(32)).decode()), "given twice"),
        ("k1:" + base64.b64encode(os.urandom(32)).decode(), "derived from the secret key"),
    ],
    ids=["no key", "upper-case id", "not base64", "short key", "given twice", "the secret's own"],
)  # random values
# in the ids would differ between pytest-xdist's workers, which then refuse to run
@pytest.mark.one_database
def test_badly_written_keys_are_refused_at_start(configured: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(pii_keys=configured)


@pytest.mark.one_database
def test_rotation_reseals_everything_under_the_new_key_and_can_run_again(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'rotate.db'}"
    for name, value in {
        "DATABASE_URL": url,
        "ENVIRONMENT": "test",
        "SECRET_KEY": TEST_SECRET,
        "BLIND_KEY_BITS": "1024",
    }.items():
        monkeypatch.setenv(f"UNDERSIGNED_{name}", value)
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    created = runner.invoke(cli, ["users", "create-admin", "boss@example.org", "--name", "Bea Boss", "--no-password"])
    assert created.exit_code == 0, created.output

    generated = runner.invoke(cli, ["keys", "generate", "k2"])
    new_key = generated.output.strip()
    assert generated.exit_code == 0 and new_key.startswith("k2:")
    assert runner.invoke(cli, ["keys", "generate", "K!"]).exit_code == 2
    assert runner.invoke(cli, ["keys", "generate", "k1"]).exit_code == 2, "k1 is the secret's own key"
    monkeypatch.setenv("UNDERSIGNED_PII_KEYS", new_key)
    rotated = runner.invoke(cli, ["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    assert "users.email_sealed: 1 re-sealed" in rotated.output and "under key k2" in rotated.output

    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            prefixes = {
                bytes(value)[:2]
                for table, column in (("users", "email_sealed"), ("users", "display_name_sealed"))
                for value in connection.scalars(text(f"SELECT {column} FROM {table}"))
            }
        assert prefixes == {b"k2"}
        from sqlalchemy.orm import Session

        with Session(engine) as db:
            [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "keys.rotated"))
            assert entry.subject == "personal data key k2" and '"resealed": 2' in entry.detail
            assert "boss@example.org" not in entry.detail and audit.verify(db=db).intact
            assert db.scalar(select(User.display_name)) == "Bea Boss"
    finally:
        engine.dispose()

    again = runner.invoke(cli, ["keys", "rotate"])
    assert again.exit_code == 0 and "0 values re-sealed" in again.output


def _scratch_url(database_url: str, tmp_path, name: str) -> tuple[str, Callable[[], None]]:
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / (name + '.db')}", lambda: None
    server = make_url(database_url)
    scratch = f"{server.database}_{name}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {scratch}"))
        connection.execute(text(f"CREATE DATABASE {scratch}"))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
        admin.dispose()

    return server.set(database=scratch).render_as_string(hide_password=False), drop


def test_the_migration_seals_existing_rows_and_reverses(database_url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UNDERSIGNED_SECRET_KEY", TEST_SECRET)
    url, drop = _scratch_url(database_url, tmp_path, "seal_migration")
    try:
        migrations.upgrade(url, "444e94f45a3b")
        engine = build_engine(url)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, email, display_name, created_at, notify_comment_replies) "
                    "VALUES (1, :email, :name, CURRENT_TIMESTAMP, true)"
                ),
                {"email": ADDRESS, "name": NAME},
            )
            connection.execute(
                text(
                    "INSERT INTO outbox_messages (id, to_address, subject, body_text, template, status, attempts, "
                    "created_at, next_attempt_at) VALUES (1, :to, 'Hello', :body, 'verify_email', 'sent', 1, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"to": ADDRESS, "body": f"Hi {NAME}"},
            )
            # Rows pointing at the account: rebuilding `users` (SQLite's batch mode) must keep them all.
            connection.execute(
                text("INSERT INTO role_grants (user_id, role, granted_at) VALUES (1, 'admin', CURRENT_TIMESTAMP)")
            )
            category = connection.execute(text("SELECT id FROM categories ORDER BY id LIMIT 1")).scalar_one()
            connection.execute(
                text(
                    "INSERT INTO petitions (id, state, title, ask, background, category_id, allow_anonymous, "
                    "collect_attributes, creator_id, version, sponsor_nonce, sponsor_count, signature_count, "
                    "withdrawal_count, created_at, updated_at, comment_count, comment_digest_through) VALUES (1, 'open', "
                    "'T', 'A', 'B', :category, false, false, 1, 1, 'n', 0, 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
                    "0, 0)"
                ),
                {"category": category},
            )
            connection.execute(
                text(
                    "INSERT INTO invalidations (id, petition_id, moderator_id, rule, reason, matched, created_at) "
                    "VALUES (1, 1, 1, :rule, 'Compromised.', 1, CURRENT_TIMESTAMP)"
                ),
                {"rule": f"1 entry: {ADDRESS}"},
            )
        migrations.upgrade(url)
        migrations.check(url)
        from sqlalchemy.orm import Session

        with Session(engine) as db:
            user = db.scalars(select(User).where(address_lookup(ADDRESS))).one()
            assert (user.email, user.display_name) == (ADDRESS, NAME)
            assert db.scalar(select(OutboxMessage.body_text)) == f"Hi {NAME}"
            stored = b"".join(
                b"".join(raw(db, column))
                for column in (User.email, User.display_name, OutboxMessage.to_address, OutboxMessage.body_text)
            )
            assert ADDRESS.encode() not in stored and b"Quarry" not in stored
            assert b"".join(raw(db, Invalidation.rule)).find(ADDRESS.encode()) == -1
            assert db.scalar(select(Invalidation.rule)) == f"1 entry: {ADDRESS}"
            assert db.scalar(text("SELECT count(*) FROM role_grants")) == 1, "nothing cascaded"
            assert db.scalar(text("SELECT creator_id FROM petitions")) == 1

        from alembic import command

        command.downgrade(migrations.alembic_config(url), "444e94f45a3b")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT email, display_name FROM users")).one() == (ADDRESS, NAME)
            assert connection.execute(text("SELECT rule FROM invalidations")).scalar_one() == f"1 entry: {ADDRESS}"
            assert connection.execute(text("SELECT count(*) FROM role_grants")).scalar_one() == 1
        engine.dispose()
    finally:
        drop()


def test_rotation_reseals_the_blind_signing_keys_of_petitions_and_polls(db, rt, sessions) -> None:
    """The private keys that issue anonymous credentials (a petition's signing, discussion and signer keys, a poll's
    own key) are sealed with the personal-data key too. After a rotation the operator removes the old key (it
    leaked, say): a private key still under it could no longer be opened, and no worker could sign or comment
    anonymously, nor answer the poll, until the petition or poll closed."""
    petition = factories.open_petition(db, rt, allow_anonymous=True)
    poll = ballot_helpers.pulse_ballot(db, rt)
    columns = {
        "issuing_keys": IssuingKey.sealed_private,
        "discussion_keys": DiscussionKey.sealed_private,
        "signer_keys": SignerKey.sealed_private,
        "ballots": Ballot.sealed_private,
    }

    def key_ids() -> dict[str, set[str]]:
        db.expire_all()
        return {
            name: {crypto.key_id_of(bytes(value)) for value in db.scalars(select(column)) if value is not None}
            for name, column in columns.items()
        }

    before = key_ids()
    assert all(before.values()), before
    try:
        crypto.install(rt.keyring, crypto.generate_key("r8"))
        rotated = rotation.rotate(sessions=sessions, rt=rt)
        assert key_ids() == {name: {"r8"} for name in columns}
        assert {name: rotated.resealed.get(f"{name}.sealed_private") for name in columns} == {
            name: 1 for name in columns
        }
        # Each still opens under its own context: credentials are issued as before.
        db.expire_all()
        assert issuing_keys.signer_for(key=db.get_one(IssuingKey, petition.id), rt=rt)
        assert issuing_keys.signer_for(key=db.get_one(DiscussionKey, petition.id), rt=rt)
        assert issuing_keys.signer_for(key=db.get_one(SignerKey, petition.id), rt=rt)
        assert ballot_keys.signer_for(rt=rt, ballot=db.get_one(Ballot, poll.id))
    finally:
        pii_keys = rt.settings.pii_keys.get_secret_value() if rt.settings.pii_keys else None
        crypto.install(rt.keyring, pii_keys)  # the test runtime's own key seals again
