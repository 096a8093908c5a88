"""Admins set the organization's rules (domains, sponsors, thresholds) on a page; every change is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit import service as audit
from app.models.accounts import Role
from app.models.audit import AuditEntry
from tests import factories
from tests.conftest import PASSWORD, Browser, count_rows, make_user, sign_in_as

pytestmark = pytest.mark.one_database

RULES = {
    "allowed_email_domains": "example.org, staff.example.net",
    "sponsors_required": "1",
    "response_threshold": "40",
    "response_days": "10",
    "escalation_threshold": "400",
}


def admin_browser(browser: Browser, db) -> Browser:
    return sign_in_as(browser, db, make_user(db, email="root@example.org", name="Root", roles=(Role.admin,)))


def test_an_admin_changes_the_rules_and_the_audit_log_records_before_and_after(
    browser: Browser,
    new_browser,
    db,
    rt,
) -> None:
    admin = admin_browser(browser, db)
    page = admin.get("/admin/settings")
    assert page.status_code == 200 and 'value="example.org, example.com"' in page.text
    response = admin.post("/admin/settings", RULES)
    assert response.status_code == 303
    assert "Saved." in admin.get(response.headers["location"]).text

    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "settings.changed"))
    assert entry.actor_name == "Root" and entry.subject == "organization rules"
    assert '"response_threshold": {"from": 100, "to": 40}' in entry.detail
    assert (
        '"allowed_email_domains": {"from": "example.org, example.com", "to": "example.org, staff.example.net"}'
        in entry.detail
    )
    assert audit.verify(db=db).intact

    # The new domain can sign up at once; the dropped one cannot.
    visitor = new_browser()
    assert (
        visitor.post(
            "/signup", {"email": "ada@staff.example.net", "display_name": "Ada", "password": PASSWORD}
        ).status_code
        == 303
    )
    refused = visitor.post("/signup", {"email": "bo@example.com", "display_name": "Bo", "password": PASSWORD})
    assert refused.status_code == 422 and "example.org or staff.example.net" in refused.text

    # Petitions opened from now on take the new thresholds, and one sponsor is enough.
    petition = factories.petition_gathering_sponsors(db, rt)
    from app.petitions import service as petitions

    petitions.sponsor(
        db=db,
        rt=rt,
        petition=petition,
        token=petitions.sponsor_token(rt=rt, petition=petition),
        user=factories.worker(db),
    )
    assert petition.state == "in_moderation"
    petitions.open_petition(db=db, rt=rt, petition=petition, actor=factories.moderator(db))
    assert (petition.response_threshold, petition.escalation_threshold) == (40, 400)

    again = admin.post("/admin/settings", RULES)
    assert "Nothing changed." in admin.get(again.headers["location"]).text
    assert db.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())) == entry.seq, "no empty entry"


def test_bad_rules_are_refused_next_to_the_field_and_change_nothing(browser: Browser, db) -> None:
    admin = admin_browser(browser, db)
    for field, value, message in [
        ("escalation_threshold", "40", "Make it larger than the response threshold."),
        ("allowed_email_domains", "example.org, not a domain!", "is not a domain"),
        ("allowed_email_domains", " , ", "Name at least one domain"),
        ("response_days", "0", "Enter a number from 1 to 365."),
        ("sponsors_required", "many", "Enter a number from 0 to 50."),
    ]:
        response = admin.post("/admin/settings", {**RULES, field: value})
        assert response.status_code == 422, field
        assert f'id="{field}-error"' in response.text and message in response.text, field
    assert count_rows(db, "organization_rules") == 0 and count_rows(db, "audit_log") == 0


def test_the_rules_api_reads_and_changes_the_same_rules(browser: Browser, db) -> None:
    admin = admin_browser(browser, db)
    assert admin.api("GET", "/api/v1/admin/rules").json()["allowed_email_domains"] == ["example.org", "example.com"]
    changed = admin.api("PUT", "/api/v1/admin/rules", {**RULES, "sponsors_required": 2})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "allowed_email_domains": ["example.org", "staff.example.net"],
        "response_threshold": 40,
        "escalation_threshold": 400,
        "response_days": 10,
        "sponsors_required": 2,
    }
    refused = admin.api("PUT", "/api/v1/admin/rules", {**RULES, "escalation_threshold": 1})
    assert refused.status_code == 422
    assert admin.api("GET", "/api/v1/admin/rules").json()["sponsors_required"] == 2


def test_a_dropped_domain_keeps_its_members_signed_in_but_not_signing(
    browser: Browser,
    new_browser,
    db,
    rt,
) -> None:
    member = make_user(db, email="cleo@example.com", name="Cleo")
    petition = factories.open_petition(db, rt)
    admin = admin_browser(browser, db)
    assert admin.post("/admin/settings", {**RULES, "allowed_email_domains": "example.org"}).status_code == 303

    visitor = new_browser()
    assert visitor.post("/signin", {"email": "cleo@example.com", "password": PASSWORD}).status_code == 303
    refused = visitor.post(f"/petitions/{petition.id}/sign", {"visibility": "public"})
    assert refused.status_code in (303, 403)
    assert count_rows(db, "signatures") == 0 and member.id


def test_a_value_equal_to_the_default_is_not_pinned_and_a_lower_sponsor_count_moves_petitions_on(
    browser: Browser, db, rt
) -> None:
    petition = factories.petition_gathering_sponsors(db, rt)
    from app.petitions import service as petitions

    petitions.sponsor(
        db=db,
        rt=rt,
        petition=petition,
        token=petitions.sponsor_token(rt=rt, petition=petition),
        user=factories.worker(db),
    )
    db.commit()
    assert petition.state == "gathering_sponsors"
    admin = admin_browser(browser, db)
    defaults = {
        "allowed_email_domains": "example.com, example.org",
        "sponsors_required": "1",
        "response_threshold": "100",
        "response_days": "14",
        "escalation_threshold": "1000",
    }
    assert admin.post("/admin/settings", defaults).status_code == 303
    db.expire_all()
    assert db.get(type(petition), petition.id).state == "in_moderation", "one sponsor is now enough"
    from app.models.organization import OrganizationRules

    row = db.get(OrganizationRules, 1)
    assert row.sponsors_required == 1
    assert (row.allowed_email_domains, row.response_threshold, row.response_days) == (None, None, None), (
        "the defaults (domains in another order too) stay defaults"
    )
