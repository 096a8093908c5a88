"""Refused submissions on the petition page re-render it with the message, never an error page."""

import pytest

from tests import factories
from tests.conftest import Browser, count_rows, sign_in_as

pytestmark = pytest.mark.one_database


def test_a_refused_update_shows_the_petition_page_with_the_reason(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    sign_in_as(browser, db, creator)
    for number in range(3):
        assert (
            browser.post(
                f"/petitions/{petition.id}/updates", {"title": f"Update {number}", "body": "News."}
            ).status_code
            == 303
        )
    refused = browser.post(f"/petitions/{petition.id}/updates", {"title": "One more", "body": "News."})
    assert refused.status_code == 429
    assert "at most 3 updates a week" in refused.text and petition.title in refused.text
    assert 'value="One more"' in refused.text, "what was typed is kept"
    assert count_rows(db, "petition_updates") == 3
    empty = browser.post(f"/petitions/{petition.id}/updates", {"title": "", "body": ""})
    assert empty.status_code == 422 and 'id="title-error"' in empty.text


def test_a_refused_correction_keeps_the_form(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    sign_in_as(browser, db, creator)
    response = browser.post(
        f"/petitions/{petition.id}/correct",
        {
            "title": petition.title,
            "ask": petition.ask,
            "background": petition.background,
            "decision_maker": petition.decision_maker or "",
            "note": "Nothing really",
        },
    )
    assert response.status_code == 422 and "Nothing in the text changed." in response.text
    assert count_rows(db, "petition_versions") == 1
