"""The petition page names who answered for leadership, in a box above the sign panel, and shows each commitment's
progress under the commitment itself (issue #22). Positions on screen: tests/test_browser_response_box.py."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.models.accounts import Role
from app.models.responses import Commitment
from tests import factories
from tests.conftest import Browser, make_user, sign_in_as

pytestmark = pytest.mark.one_database

RESPONSE = {
    "status": "accepted",
    "summary": "We will publish the bands by March.",
    "details": "For every role.",
    "commitments.0.text": "Publish the bands",
    "commitments.0.owner": "People team",
    "commitments.0.due_on": "2027-03-31",
}


def test_the_box_names_the_responder_and_their_role_above_the_sign_panel(
    browser: Browser,
    new_browser,
    db,
    rt,
) -> None:
    petition = factories.open_petition(db, rt)
    riley = make_user(db, email="riley@example.org", name="Riley Park", password=None, roles=(Role.responder,))
    leadership = sign_in_as(browser, db, riley)
    page = browser.get(f"/petitions/{petition.id}").text
    assert 'id="response-box"' not in page and "Leadership responded: read it" not in page

    assert (
        leadership.post(
            f"/petitions/{petition.id}/respond", {**RESPONSE, "responder_role": "  Chief People Officer "}
        ).status_code
        == 303
    )
    reader = new_browser()
    page = reader.get(f"/petitions/{petition.id}").text
    box = page[page.index('id="response-box"') : page.index("</section>", page.index('id="response-box"'))]
    assert "<strong>Riley Park</strong>, Chief People Officer" in box and "Accepted" in box
    assert "We will publish the bands by March." in box
    assert page.index('id="response-box"') < page.index('id="sign"'), "above the sign panel"
    assert "Leadership responded: read it" in page, "the phone's line to it, in the tally"
    [listed] = reader.get(f"/api/v1/petitions/{petition.id}/responses").json()
    assert (listed["responder_name"], listed["responder_role"]) == ("Riley Park", "Chief People Officer")

    # A response without a role says it is for leadership; the box shows the latest.
    leadership.post(f"/petitions/{petition.id}/respond", {**RESPONSE, "summary": "Bands are drafted."})
    page = reader.get(f"/petitions/{petition.id}").text
    box = page[page.index('id="response-box"') : page.index("</section>", page.index('id="response-box"'))]
    assert "<strong>Riley Park</strong>, for leadership" in box and "Bands are drafted." in box


def test_progress_notes_show_under_their_commitment(browser: Browser, db, rt) -> None:
    petition = factories.open_petition(db, rt)
    riley = make_user(db, email="riley@example.org", name="Riley Park", password=None, roles=(Role.responder,))
    sign_in_as(browser, db, riley)
    browser.post(
        f"/petitions/{petition.id}/respond",
        {**RESPONSE, "commitments.1.text": "Explain each band", "commitments.1.owner": "People team"},
    )
    first, second = db.scalars(select(Commitment).order_by(Commitment.id)).all()
    browser.post(f"/commitments/{first.id}/update", {"status": "in_progress", "note": "Engineering bands drafted"})
    browser.post(f"/commitments/{first.id}/update", {"status": "in_progress", "note": "Sales bands drafted"})
    page = browser.get(f"/petitions/{petition.id}").text
    items = {
        match.group(1): match.group(2)
        for match in re.finditer(
            r'<li id="commitment-(\d+)">(.*?)</li>\s*(?=<li id="commitment-|</ul>)', page, re.DOTALL
        )
    }
    progress = items[str(first.id)]
    assert progress.index("Engineering bands drafted") < progress.index("Sales bands drafted"), "oldest first"
    assert "commitment-progress" in progress
    assert "commitment-progress" not in items[str(second.id)] and "drafted" not in items[str(second.id)]
