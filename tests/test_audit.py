"""The audit log records privileged actions in a hash chain that shows any later change."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from app.audit import service as audit
from app.cli import cli
from app.models.accounts import Role
from app.models.audit import AuditEntry
from tests import factories
from tests.conftest import Browser, make_user, sign_in_as


def actions(db) -> list[str]:
    db.expire_all()
    return list(db.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))


def test_privileged_actions_are_recorded_in_an_intact_chain(browser: Browser, new_browser, db, rt) -> None:
    admin = make_user(db, email="root@example.org", name="Root", password=None, roles=(Role.admin,))
    worker = factories.worker(db, name="Kai")
    sign_in_as(browser, db, admin)
    browser.post(f"/admin/users/{worker.id}/roles", {"role": "moderator"})
    browser.post(f"/admin/users/{worker.id}/roles/moderator/revoke")
    browser.post("/admin/lists/department", {"name": "Logistics"})

    petition = factories.petition_in_moderation(db, rt)
    moderator = sign_in_as(new_browser(), db, factories.moderator(db))
    moderator.post(f"/moderation/petitions/{petition.id}/open")

    assert actions(db) == ["role.granted", "role.revoked", "list.added", "petition.opened"]
    first = db.scalar(select(AuditEntry).where(AuditEntry.seq == 1))
    assert first.actor_name == "Root" and '"role": "moderator"' in first.detail
    assert audit.verify(db=db).intact
    page = browser.get("/admin/audit?check=true").text
    assert "The chain is intact: 4 entries checked." in page and "petition.opened" in page


def test_a_refused_action_leaves_no_entry(browser: Browser, db) -> None:
    admin = make_user(db, email="root@example.org", password=None, roles=(Role.admin,))
    sign_in_as(browser, db, admin)
    browser.post(f"/admin/users/{admin.id}/roles/admin/revoke")  # the last admin: refused
    assert actions(db) == []


def test_changing_or_removing_an_entry_breaks_the_chain(db, rt) -> None:
    actor = make_user(db, email="root@example.org", password=None, roles=(Role.admin,))
    for number in range(4):
        audit.record(
            db=db, rt=rt, actor=actor, action="list.added", subject="department", detail={"name": f"Team {number}"}
        )
    db.commit()
    assert audit.verify(db=db).intact and audit.verify(db=db).entries == 4

    db.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(detail='{"name": "Other"}'))
    result = audit.verify(db=db)
    assert not result.intact and "entry 2 was changed after it was written" in result.problems

    db.rollback()
    db.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    assert "entry 3 is missing (found 4 next)" in audit.verify(db=db).problems

    db.rollback()
    db.execute(delete(AuditEntry).where(AuditEntry.seq == 4))
    assert any("entries were removed" in problem for problem in audit.verify(db=db).problems)


def test_the_command_line_checks_the_chain(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("UNDERSIGNED_DATABASE_URL", url)
    monkeypatch.setenv("UNDERSIGNED_ENVIRONMENT", "test")
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    created = runner.invoke(cli, ["users", "create-admin", "boss@example.org", "--no-password"])
    assert created.exit_code == 0, created.output
    verified = runner.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0 and "intact: 1 entries" in verified.output

    from app.core.database import build_engine

    engine = build_engine(url)
    with engine.begin() as connection:
        connection.execute(update(AuditEntry).values(actor_name="Someone else"))
    engine.dispose()
    broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1 and "entry 1 was changed" in broken.output
