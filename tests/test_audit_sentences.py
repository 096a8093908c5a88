"""The audit log reads in sentences, and every action the code records has one.

The actions are found in the code itself (every call of `audit.record`, and of the helpers that pass their own
`action` parameter on to it), not in a list kept by hand: a new action without a sentence fails here.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from app.audit import service as audit
from app.audit.sentences import FALLBACK, SENTENCES, sentence
from app.models.accounts import Role
from app.models.audit import AuditEntry
from tests import factories
from tests.conftest import Browser, make_user, sign_in_as

pytestmark = pytest.mark.one_database

APP = Path(__file__).resolve().parents[1] / "app"


def _strings(node: ast.expr, constants: dict[str, str]) -> set[str]:
    """The action names an expression can take: literals, both sides of a conditional, module constants."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body, constants) | _strings(node.orelse, constants)
    if isinstance(node, ast.Name) and node.id in constants:
        return {constants[node.id]}
    return set()


def _is_record(call: ast.Call) -> bool:
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "record"
        and isinstance(func.value, ast.Name)
        and func.value.id == "audit"
    )


def recorded_actions() -> set[str]:
    """Every action name the application can write to the audit log, read from its source."""
    actions: set[str] = set()
    unresolved: list[str] = []
    for path in APP.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        # Helpers that take the action as a parameter and pass it to audit.record: (name, position).
        helpers: dict[str, int] = {}
        local_assignments: dict[str, set[str]] = {}
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            parameters = [argument.arg for argument in function.args.args]
            for node in ast.walk(function):
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    local_assignments.setdefault(node.targets[0].id, set()).update(_strings(node.value, constants))
                if isinstance(node, ast.Call) and _is_record(node):
                    action = next((keyword.value for keyword in node.keywords if keyword.arg == "action"), None)
                    assert action is not None, f"{path}: audit.record without action="
                    if isinstance(action, ast.Name) and action.id in parameters:
                        helpers[function.name] = parameters.index(action.id)
                        continue
                    found = _strings(action, constants)
                    if not found:
                        unresolved.append(f"{path.relative_to(APP.parent)}:{node.lineno}")
                    actions |= found
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers:
                position = helpers[node.func.id]
                argument = (
                    node.args[position]
                    if len(node.args) > position
                    else next((keyword.value for keyword in node.keywords if keyword.arg == "action"), None)
                )
                assert argument is not None, f"{path}:{node.lineno}"
                found = _strings(argument, constants)
                if not found and isinstance(argument, ast.Name):
                    found = local_assignments.get(argument.id, set())
                if not found:
                    unresolved.append(f"{path.relative_to(APP.parent)}:{node.lineno}")
                actions |= found
    assert not unresolved, (
        "audit actions this test cannot read from the code (write the name as a literal, a "
        f"conditional of literals or a module constant): {unresolved}"
    )
    return actions


def test_every_action_the_code_records_has_a_sentence() -> None:
    actions = recorded_actions()
    # The scan finds what it should: a literal, a conditional, a module constant, a helper's argument.
    assert {
        "role.granted",
        "list.withdrawn",
        "petition.export",
        "petition.opened",
        "comment.kept",
        "branding.changed",
    } <= actions
    missing = sorted(actions - SENTENCES.keys())
    assert not missing, f"audit actions without a sentence in app/audit/sentences.py: {missing}"


def test_a_sentence_for_each_entry_with_the_raw_form_one_click_away(browser: Browser, new_browser, db, rt) -> None:
    admin = make_user(db, email="ana@example.org", name="Ana", password=None, roles=(Role.admin,))
    lee = factories.worker(db, name="Lee")
    sign_in_as(browser, db, admin)
    browser.post(f"/admin/users/{lee.id}/roles", {"role": "moderator"})
    petition = factories.petition_in_moderation(db, rt)
    moderator = sign_in_as(new_browser(), db, factories.worker(db, name="Morgan", roles=(Role.moderator,)))
    moderator.post(f"/moderation/petitions/{petition.id}/open")
    browser.post("/admin/lists/department", {"name": "Logistics"})

    page = browser.get("/admin/audit").text
    assert "Ana granted Lee the moderator role." in page
    assert f"Morgan opened the petition “{petition.title}” for signatures." in page
    assert "Ana added “Logistics” to the list of departments." in page
    # The machine form is still there, folded: the action key and the JSON detail inside a <details>.
    raw = page[page.index('<details class="audit-raw">') :]
    assert "<code>list.added</code>" in raw and "&#34;name&#34;: &#34;Logistics&#34;" in raw
    assert page.count('<details class="audit-raw">') == 3

    # The petition's record, on the moderators' review page, names who decided each step too.
    record = moderator.get(f"/moderation/petitions/{petition.id}").text
    assert "Opened for signatures, by Morgan." in record


def test_every_sentence_fills_in_from_the_entries_the_code_writes(db, rt) -> None:
    """Each sentence's placeholders come from the detail its action records: an entry with that detail never falls
    back to the plain form, and one with a detail it does not expect still reads (never an error)."""
    actor = make_user(db, email="ana@example.org", name="Ana", password=None, roles=(Role.admin,))
    details: dict[str, dict[str, object]] = {
        "role.granted": {"role": "moderator", "account": "Lee"},
        "role.revoked": {"role": "moderator", "account": "Lee"},
        "list.added": {"name": "Logistics"},
        "list.offered": {"name": "Logistics"},
        "list.withdrawn": {"name": "Logistics"},
        "eligibility.imported": {"members": 12},
        "eligibility.cleared": {},
        "settings.changed": {"response_days": {"from": 14, "to": 21}},
        "branding.changed": {"name": {"from": None, "to": "Acme"}},
        "petition.opened": {"title": "T"},
        "petition.rejected": {"title": "T", "reason": "duplicate", "note": None},
        "petition.hidden": {"title": "T", "reason": "r"},
        "petition.restored": {"title": "T"},
        "petition.export": {"petition_id": 1, "kind": "tally", "format": "pdf", "via": "page"},
        "signatures.void_previewed": {"rule_entries": 2, "rule_domains": 1, "matched": 3},
        "signatures.voided": {"rule_entries": 2, "matched": 3, "reason": "r"},
        "retention.erased": {"signatures": 5, "retention_days": 90},
        "comment.hidden": {"petition": 1, "reason": "r"},
        "comment.restored": {"petition": 1},
        "comment.kept": {"petition": 1},
        "comments.locked": {"reason": "r"},
        "comments.unlocked": {},
        "keys.rotated": {"resealed": 4, "reindexed": 2},
    }
    assert set(details) == set(SENTENCES), "a detail for every sentence"
    fallback = FALLBACK.split(":")[0] % {"actor": "Ana"}
    for action, detail in details.items():
        entry = audit.record(db=db, rt=rt, actor=actor, action=action, subject="petition 1", detail=detail)
        words = sentence(entry, str)
        assert words.startswith("Ana ") and not words.startswith(fallback + ":"), (action, words)
        assert "%(" not in words and "{" not in words, (action, words)
    odd = AuditEntry(
        seq=0,
        at=entry.at,
        actor_id=None,
        actor_name="Undersigned (system)",
        action="petition.hidden",
        subject="petition 1",
        detail=json.dumps({"unexpected": True}),
        prev_hash="",
        hash="",
    )
    assert sentence(odd, str) == "Undersigned (system): petition.hidden on petition 1."
