"""The `undersigned` command: migrations, the first admin, the demo organization."""

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.core.database import build_engine, build_sessionmaker
from app.core.security import verify_password
from app.models.accounts import Role, User
from tests.server_process import migrated_sqlite


@pytest.fixture
def cli_database(tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated database for the commands (a copy of this process's template: migrating one for each test
    cost a second or more); `undersigned db upgrade` itself is tested on an empty one in tests/test_cli.py."""
    (tmp_path / "var").mkdir()
    url = migrated_sqlite(tmp_path / "var" / "cli.db")
    monkeypatch.setenv("UNDERSIGNED_DATABASE_URL", url)
    monkeypatch.setenv("UNDERSIGNED_ENVIRONMENT", "test")
    return url


def _users(url: str) -> list[User]:
    engine = build_engine(url)
    try:
        with build_sessionmaker(engine)() as db:
            from sqlalchemy.orm import selectinload

            return list(db.scalars(select(User).options(selectinload(User.roles)).order_by(User.id)))
    finally:
        engine.dispose()


def test_db_check_after_upgrade(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNDERSIGNED_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'cli.db'}")
    monkeypatch.setenv("UNDERSIGNED_ENVIRONMENT", "test")
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["db", "check"])
    assert result.exit_code == 0 and "No drift" in result.output


def test_create_admin(cli_database: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["users", "create-admin", "Boss@Example.org", "--name", "Boss"],
        input="a long admin password\na long admin password\n",
    )
    assert result.exit_code == 0, result.output
    [user] = _users(cli_database)
    assert user.email == "boss@example.org" and user.is_verified and user.has_role(Role.admin)
    assert verify_password("a long admin password", user.password_hash)


def test_create_admin_refuses_a_foreign_domain(cli_database: str) -> None:
    result = CliRunner().invoke(cli, ["users", "create-admin", "boss@elsewhere.net", "--no-password"])
    assert result.exit_code == 2 and "Use your work address at example.org" in result.output
    assert _users(cli_database) == []


def test_demo_seed_is_idempotent(cli_database: str) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["demo", "seed"])
    second = runner.invoke(cli, ["demo", "seed"])
    assert first.exit_code == second.exit_code == 0
    assert "admin@example.org" in first.output and "demo-password-2026" in first.output
    users = _users(cli_database)
    assert len(users) == 7
    roles = {role for user in users for role in user.role_set}
    assert roles == {Role.worker, Role.responder, Role.moderator, Role.admin}


def test_worker_once_delivers_to_the_mailbox(cli_database: str) -> None:
    result = CliRunner().invoke(cli, ["worker", "--once"])
    assert result.exit_code == 0 and "Sent 0 messages; closed 0 petitions." in result.output


def test_export_writes_the_file_and_records_it(cli_database: str, tmp_path) -> None:
    import csv
    import json

    from app.cli import _runtime
    from app.core.settings import Settings
    from app.models.audit import AuditEntry
    from app.signatures import service as signatures
    from tests import factories

    engine = build_engine(cli_database)
    rt = _runtime(Settings())
    with build_sessionmaker(engine)() as db:
        petition = factories.open_petition(db, rt)
        for index in range(3):
            signatures.sign(
                db=db,
                rt=rt,
                petition_id=petition.id,
                user=factories.worker(db, name=f"Ana {index}"),
                visibility="organizers",
                notify_updates=False,
            )
        db.commit()
        petition_id = petition.id

    names = tmp_path / "names.csv"
    result = CliRunner().invoke(
        cli, ["export", str(petition_id), "--kind", "signers", "--format", "csv", "--out", str(names)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(row["name"] for row in csv.DictReader(names.read_text().splitlines())) == ["Ana 0", "Ana 1", "Ana 2"]
    tally = tmp_path / "tally.json"
    result = CliRunner().invoke(cli, ["export", str(petition_id), "--format", "json", "--out", str(tally)])
    assert result.exit_code == 0, result.output
    assert json.loads(tally.read_text())["signature_count"] == 3

    refused = CliRunner().invoke(cli, ["export", "999", "--format", "csv", "--out", str(tmp_path / "x.csv")])
    assert refused.exit_code == 2 and "no such petition" in refused.output.lower()
    bad = CliRunner().invoke(cli, ["export", str(petition_id), "--format", "docx", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and not (tmp_path / "x").exists()
    nowhere = CliRunner().invoke(cli, ["export", str(petition_id), "--out", str(tmp_path / "no" / "x.csv")])
    assert nowhere.exit_code == 2 and "Cannot write" in nowhere.output
    huge = CliRunner().invoke(cli, ["export", str(2**40), "--out", str(tmp_path / "x.csv")])
    assert huge.exit_code == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["names.csv", "tally.json", "var"], "no leftovers"
    with build_sessionmaker(engine)() as db:
        recorded = [
            json.loads(entry.detail)
            for entry in db.scalars(
                select(AuditEntry).where(AuditEntry.action == "petition.export").order_by(AuditEntry.seq)
            )
        ]
    engine.dispose()
    assert [(entry["kind"], entry["format"], entry["via"]) for entry in recorded] == [
        ("signers", "csv", "command line"),
        ("tally", "json", "command line"),
    ]


def test_the_client_wallet_commands_exist_and_say_plainly_when_there_is_no_wallet(tmp_path) -> None:
    listed = CliRunner().invoke(cli, ["client", "wallet", "--help"])
    assert listed.exit_code == 0 and "export" in listed.output and "import" in listed.output
    empty = CliRunner().invoke(cli, ["client", "wallet", "export", "--wallet", str(tmp_path / "wallet.json")])
    assert empty.exit_code == 1
    assert (
        "This wallet file holds no wallet secret yet: `undersigned client collect URL` starts or collects one."
        in empty.output
    )
    bad = CliRunner().invoke(
        cli,
        ["client", "wallet", "import", "not an address", "--stdin", "--wallet", str(tmp_path / "wallet.json")],
        input="0000\n",
    )
    assert bad.exit_code == 1 and "Give the server's address" in bad.output and "Traceback" not in bad.output


def test_export_names_the_account_when_the_file_holds_several(tmp_path) -> None:
    from app.anonymous import derive
    from app.clients import anonymous as client

    path = tmp_path / "wallet.json"
    wallet = client.load_wallet(path)
    secrets = {email: derive.new_secret() for email in ("ana@example.org", "ben@example.org")}
    for email, secret in secrets.items():
        client.keep_secret(wallet, "https://host.example.org", email, secret)
    client.save_wallet(path, wallet)
    several = CliRunner().invoke(cli, ["client", "wallet", "export", "--wallet", str(path)])
    assert several.exit_code == 1 and "ana@example.org on https://host.example.org" in several.output
    named = CliRunner().invoke(
        cli,
        [
            "client",
            "wallet",
            "export",
            "https://host.example.org/petitions/3",
            "--email",
            "Ben@example.org",
            "--wallet",
            str(path),
        ],
    )
    assert named.exit_code == 0, named.output
    assert named.output.splitlines()[0] == derive.recovery_code(secrets["ben@example.org"])
    assert "ben@example.org on https://host.example.org" in named.output
