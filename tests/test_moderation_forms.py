"""A moderator's page forms and the moderation API validate through the same schemas (app/moderation/schemas.py),
so the same bad input is refused the same way, in the same words (issue #23)."""

from __future__ import annotations

import html

import pytest
from sqlalchemy.orm import Session

from app.models.accounts import Role
from tests import factories
from tests.conftest import Browser, sign_in_as

pytestmark = pytest.mark.one_database


def test_the_void_form_and_the_api_refuse_a_negative_count_alike(browser: Browser, db: Session, rt) -> None:
    petition = factories.open_petition(db, rt)
    sign_in_as(browser, db, factories.worker(db, name="Rita Reviewer", roles=(Role.moderator,)))
    body = {"rule": "@example.org", "reason": "Test accounts signed", "expected": "-3"}

    api = browser.api("POST", f"/api/v1/moderation/petitions/{petition.id}/invalidations", {**body, "expected": -3})
    page = browser.post(f"/moderation/petitions/{petition.id}/signatures/void", body)

    # The page read "-3" as no preview at all and asked for one; the API refused the number itself.
    assert page.status_code == api.status_code == 422
    message = api.json()["error"]["fields"]["expected"]
    assert message in html.unescape(page.text)


def test_the_hide_form_and_the_api_refuse_an_overlong_reason_alike(browser: Browser, db: Session, rt) -> None:
    petition = factories.open_petition(db, rt)
    sign_in_as(browser, db, factories.worker(db, name="Rita Reviewer", roles=(Role.moderator,)))
    reason = "x" * 1001

    api = browser.api("POST", f"/api/v1/moderation/petitions/{petition.id}/hide", {"reason": reason})
    page = browser.post(f"/moderation/petitions/{petition.id}/hide", {"hidden_reason": reason})

    assert api.status_code == 422 and page.status_code == 303  # the page goes back to the review with the reason
    message = api.json()["error"]["fields"]["reason"]
    assert message in html.unescape(browser.get(page.headers["location"]).text)
    assert petition.state == "open"


def test_the_reject_form_shows_a_missing_reason_and_an_overlong_note_in_one_round(
    browser: Browser, db: Session, rt
) -> None:
    petition = factories.petition_in_moderation(db, rt)
    sign_in_as(browser, db, factories.moderator(db))

    page = browser.post(f"/moderation/petitions/{petition.id}/reject", {"reason": "", "note": "x" * 1001})

    assert page.status_code == 303
    text = html.unescape(browser.get(page.headers["location"]).text)
    assert "Choose a reason from the list." in text, "the reason's error waited for the note's to be fixed"
    assert "Use at most" in text
    assert petition.state != "rejected"
