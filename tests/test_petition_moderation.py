"""Moderation of petitions: the queue, reviewing, opening, rejecting, hiding and restoring."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests import factories
from tests.conftest import (
    Browser,
    outbox,
    sign_in_as,
)
from tests.petition_steps import (
    UTC_NOW,
    event_kinds,
    events,
    moderator_named,
    reload,
    rows,
    squash,
    visitor,
)

pytestmark = pytest.mark.one_database


def test_a_moderator_claims_the_review_lock(browser: Browser, db, rt) -> None:
    petition = factories.petition_in_moderation(db, rt)
    rita = moderator_named(db, "Rita Reviewer")
    sign_in_as(browser, db, rita)

    response = browser.post(f"/moderation/petitions/{petition.id}/claim")

    assert response.status_code == 303
    fresh = reload(db, petition)
    assert (fresh.moderation_lock_by_id, fresh.moderation_lock_until) == (rita.id, UTC_NOW + timedelta(minutes=15))
    queue = squash(browser.get("/moderation").text)
    assert "Rita Reviewer (until 09:15 UTC)" in queue
    assert (
        "You are reviewing this petition until 09:15 UTC." in browser.get(f"/moderation/petitions/{petition.id}").text
    )


@pytest.mark.parametrize(
    ("action", "body"),
    [("open", None), ("reject", {"reason": "duplicate"}), ("hide", {"reason": "Names a colleague."}), ("claim", None)],
)
def test_a_second_moderator_cannot_decide_while_the_first_holds_the_lock(
    new_browser, db, rt, action: str, body: dict[str, str] | None
) -> None:
    petition = factories.petition_in_moderation(db, rt)
    rita, sam = moderator_named(db, "Rita Reviewer"), moderator_named(db, "Sam Second")
    assert visitor(new_browser, db, rita).post(f"/moderation/petitions/{petition.id}/claim").status_code == 303
    before = rows(db)

    response = visitor(new_browser, db, sam).api("POST", f"/api/v1/moderation/petitions/{petition.id}/{action}", body)

    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        "Rita Reviewer is reviewing this petition until 09:15 UTC. Pick another one from the queue."
    )
    fresh = reload(db, petition)
    assert (fresh.state, fresh.moderation_lock_by_id) == ("in_moderation", rita.id)
    assert rows(db) == before


def test_the_moderation_pages_refuse_a_second_moderator_naming_the_first(new_browser, db, rt) -> None:
    petition = factories.petition_in_moderation(db, rt)
    rita, sam = moderator_named(db, "Rita Reviewer"), moderator_named(db, "Sam Second")
    visitor(new_browser, db, rita).post(f"/moderation/petitions/{petition.id}/claim")
    second = visitor(new_browser, db, sam)
    before = rows(db)

    opened = second.post(f"/moderation/petitions/{petition.id}/open")
    assert opened.status_code == 409 and "Rita Reviewer is reviewing this petition" in opened.text
    review = second.get(f"/moderation/petitions/{petition.id}")
    assert "Rita Reviewer is reviewing this petition until 09:15 UTC" in review.text
    assert "Open for signatures</button>" not in review.text
    rejected = second.post(f"/moderation/petitions/{petition.id}/reject", {"reason": "duplicate"})
    assert rejected.status_code == 303
    assert "Rita Reviewer is reviewing this petition" in second.get(rejected.headers["location"]).text

    assert reload(db, petition).state == "in_moderation"
    assert rows(db) == before


def test_after_the_lock_expires_a_second_moderator_can_decide(new_browser, db, rt, clock) -> None:
    petition = factories.petition_in_moderation(db, rt)
    rita, sam = moderator_named(db, "Rita Reviewer"), moderator_named(db, "Sam Second")
    visitor(new_browser, db, rita).post(f"/moderation/petitions/{petition.id}/claim")
    second = visitor(new_browser, db, sam)
    clock.advance(timedelta(minutes=14))
    assert second.api("POST", f"/api/v1/moderation/petitions/{petition.id}/open").status_code == 409

    clock.advance(timedelta(minutes=1, seconds=1))
    response = second.api("POST", f"/api/v1/moderation/petitions/{petition.id}/open")

    assert response.status_code == 200 and response.json()["state"] == "open"
    fresh = reload(db, petition)
    assert (fresh.state, fresh.moderation_lock_by_id, fresh.moderation_lock_until) == ("open", None, None)
    opened = [item for item in events(db, petition) if item.kind == "opened"]
    assert [item.actor_id for item in opened] == [sam.id]


def test_a_released_lock_lets_another_moderator_claim_it(new_browser, db, rt) -> None:
    petition = factories.petition_in_moderation(db, rt)
    rita, sam = moderator_named(db, "Rita Reviewer"), moderator_named(db, "Sam Second")
    first = visitor(new_browser, db, rita)
    first.post(f"/moderation/petitions/{petition.id}/claim")

    assert first.post(f"/moderation/petitions/{petition.id}/release").status_code == 303
    assert visitor(new_browser, db, sam).post(f"/moderation/petitions/{petition.id}/claim").status_code == 303
    assert reload(db, petition).moderation_lock_by_id == sam.id


@pytest.mark.parametrize(
    "body", [{"reason": "made_up"}, {"reason": ""}, {}], ids=["unknown-reason", "empty-reason", "no-reason"]
)
def test_a_rejection_needs_a_reason_from_the_list(browser: Browser, db, rt, body: dict[str, str]) -> None:
    petition = factories.petition_in_moderation(db, rt)
    sign_in_as(browser, db, moderator_named(db, "Rita Reviewer"))
    before = rows(db)

    response = browser.api("POST", f"/api/v1/moderation/petitions/{petition.id}/reject", body)

    assert response.status_code == 422 and "reason" in response.json()["error"]["fields"]
    assert reload(db, petition).state == "in_moderation"
    assert rows(db) == before


def test_the_reject_page_without_a_reason_writes_nothing_and_says_why(browser: Browser, db, rt) -> None:
    petition = factories.petition_in_moderation(db, rt)
    sign_in_as(browser, db, moderator_named(db, "Rita Reviewer"))
    before = rows(db)

    response = browser.post(f"/moderation/petitions/{petition.id}/reject", {"reason": "", "note": "no"})

    assert response.status_code == 303
    assert "Choose a reason from the list." in browser.get(response.headers["location"]).text
    assert reload(db, petition).state == "in_moderation" and rows(db) == before


def test_a_public_rejection_reason_shows_on_the_petition_page(new_browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.petition_in_moderation(db, rt, creator)
    rita = moderator_named(db, "Rita Reviewer")

    response = visitor(new_browser, db, rita).post(
        f"/moderation/petitions/{petition.id}/reject", {"reason": "duplicate", "note": "See petition 12."}
    )

    assert response.status_code == 303
    fresh = reload(db, petition)
    assert (fresh.state, fresh.rejection_code, fresh.rejection_note) == ("rejected", "duplicate", "See petition 12.")
    public = visitor(new_browser, db).get(f"/petitions/{petition.id}")
    assert public.status_code == 200
    assert "Rejected: There is already a petition about this" in public.text
    assert "Sign and share the open petition that asks for the same thing." in public.text
    assert "See petition 12." in public.text
    api = visitor(new_browser, db).api("GET", f"/api/v1/petitions/{petition.id}").json()
    assert (api["state"], api["rejection"]) == ("rejected", "There is already a petition about this")
    assert api["rejection_detail"] == "Sign and share the open petition that asks for the same thing."
    rejected = [item for item in events(db, petition) if item.kind == "rejected"]
    assert [(item.actor_id, item.detail) for item in rejected] == [(rita.id, "There is already a petition about this")]
    assert [message.template for message in outbox(db, creator.email)][-1] == "petition_rejected"


def test_a_rejection_for_a_withheld_reason_hides_the_petition_from_the_public(new_browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.petition_in_moderation(db, rt, creator)
    moderator = visitor(new_browser, db, moderator_named(db, "Rita Reviewer"))

    response = moderator.api("POST", f"/api/v1/moderation/petitions/{petition.id}/reject", {"reason": "offensive"})

    assert response.status_code == 200 and response.json()["rejection_detail"] is None
    assert visitor(new_browser, db).get(f"/petitions/{petition.id}").status_code == 404
    assert visitor(new_browser, db, factories.worker(db)).get(f"/petitions/{petition.id}").status_code == 404
    assert visitor(new_browser, db).api("GET", f"/api/v1/petitions/{petition.id}").status_code == 404
    assert visitor(new_browser, db).get(f"/petitions/{petition.id}/versions").status_code == 404
    own = visitor(new_browser, db, creator).get(f"/petitions/{petition.id}")
    assert own.status_code == 200 and "Rejected: It is offensive, abusive or discriminatory" in own.text


def test_hiding_records_the_reason_for_the_organizers_and_hides_the_petition(new_browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    rita = moderator_named(db, "Rita Reviewer")

    response = visitor(new_browser, db, rita).post(
        f"/moderation/petitions/{petition.id}/hide", {"hidden_reason": "It names a colleague in the background."}
    )

    assert response.status_code == 303
    fresh = reload(db, petition)
    assert (fresh.state, fresh.hidden_reason) == ("hidden", "It names a colleague in the background.")
    hidden = [item for item in events(db, petition) if item.kind == "hidden"]
    assert [(item.actor_id, item.detail, item.public) for item in hidden] == [
        (rita.id, "It names a colleague in the background.", False)
    ]
    own = visitor(new_browser, db, creator).get(f"/petitions/{petition.id}")
    assert own.status_code == 200
    assert "Reason: It names a colleague in the background." in own.text
    assert visitor(new_browser, db).get(f"/petitions/{petition.id}").status_code == 404
    assert visitor(new_browser, db, factories.worker(db)).get(f"/petitions/{petition.id}").status_code == 404
    assert [message.template for message in outbox(db, creator.email)][-1] == "petition_hidden"
    assert "hidden" not in [
        item["kind"]
        for item in visitor(new_browser, db, creator).api("GET", f"/api/v1/petitions/{petition.id}/timeline").json()
    ]


def test_hiding_needs_a_reason(browser: Browser, db, rt) -> None:
    petition = factories.open_petition(db, rt)
    sign_in_as(browser, db, moderator_named(db, "Rita Reviewer"))
    before = rows(db)

    response = browser.api("POST", f"/api/v1/moderation/petitions/{petition.id}/hide", {"reason": "   "})

    assert response.status_code == 422 and "hidden_reason" in response.json()["error"]["fields"]
    assert reload(db, petition).state == "open" and rows(db) == before


def test_restoring_a_hidden_petition_makes_it_public_again(new_browser, db, rt) -> None:
    petition = factories.open_petition(db, rt)
    rita = moderator_named(db, "Rita Reviewer")
    moderator = visitor(new_browser, db, rita)
    moderator.post(f"/moderation/petitions/{petition.id}/hide", {"hidden_reason": "Checking a complaint."})

    response = moderator.post(f"/moderation/petitions/{petition.id}/restore")

    assert response.status_code == 303
    fresh = reload(db, petition)
    assert (fresh.state, fresh.hidden_reason) == ("open", None)
    assert event_kinds(db, petition)[-3:] == ["hidden", "opened", "restored"]
    assert visitor(new_browser, db).get(f"/petitions/{petition.id}").status_code == 200
    assert moderator.post(f"/moderation/petitions/{petition.id}/restore").status_code == 409


def test_restoring_a_hidden_closed_petition_keeps_it_closed(new_browser, db, rt) -> None:
    petition = factories.closed_petition(db, rt)
    closed_at = petition.closed_at
    moderator = visitor(new_browser, db, moderator_named(db, "Rita Reviewer"))
    moderator.post(f"/moderation/petitions/{petition.id}/hide", {"hidden_reason": "Checking a complaint."})

    assert moderator.post(f"/moderation/petitions/{petition.id}/restore").status_code == 303

    fresh = reload(db, petition)
    assert (fresh.state, fresh.closed_at) == ("closed", closed_at)


def test_restoring_a_petition_hidden_in_moderation_opens_it_and_clears_the_reason(new_browser, db, rt) -> None:
    petition = factories.petition_in_moderation(db, rt)
    moderator = visitor(new_browser, db, moderator_named(db, "Rita Reviewer"))
    moderator.post(f"/moderation/petitions/{petition.id}/hide", {"hidden_reason": "Checking a complaint."})

    assert moderator.post(f"/moderation/petitions/{petition.id}/restore").status_code == 303

    fresh = reload(db, petition)
    assert fresh.state == "open"
    assert fresh.hidden_reason is None


def test_every_moderation_decision_through_the_api_answers_with_the_petition(new_browser, db, rt) -> None:
    # Found by the API fuzz test: these answered 500 once the petition detail needed the database session.
    moderator = visitor(new_browser, db, moderator_named(db, "Rita Reviewer"))
    decisions = [
        ("claim", None, "in_moderation"),
        ("open", None, "open"),
        ("reject", {"reason": "duplicate"}, "rejected"),
        ("hide", {"reason": "Names a colleague."}, "hidden"),
    ]
    for action, body, state in decisions:
        petition = factories.petition_in_moderation(db, rt)
        response = moderator.api("POST", f"/api/v1/moderation/petitions/{petition.id}/{action}", body)
        assert response.status_code == 200, (action, response.text)
        assert response.json()["state"] == state and response.json()["sponsors_required"] >= 0

    restored = moderator.api("POST", f"/api/v1/moderation/petitions/{petition.id}/restore")
    assert restored.status_code == 200 and restored.json()["state"] == "open"


def test_the_moderation_page_shows_who_decided_what(new_browser, db, rt) -> None:
    opened = factories.petition_in_moderation(db, rt, title="Opened by Rita")
    rejected = factories.petition_in_moderation(db, rt, title="Rejected by Sam")
    hidden = factories.petition_in_moderation(db, rt, title="Hidden by Sam")
    rita = visitor(new_browser, db, moderator_named(db, "Rita Reviewer"))
    sam = visitor(new_browser, db, moderator_named(db, "Sam Second"))
    rita.post(f"/moderation/petitions/{opened.id}/open")
    sam.post(f"/moderation/petitions/{rejected.id}/reject", {"reason": "unclear"})
    sam.post(f"/moderation/petitions/{hidden.id}/hide", {"hidden_reason": "Names a colleague."})

    page = squash(rita.get("/moderation").text)

    assert f'Rita Reviewer opened <a href="/moderation/petitions/{opened.id}">Opened by Rita</a>' in page
    assert (
        f'Sam Second rejected <a href="/moderation/petitions/{rejected.id}">Rejected by Sam</a> '
        "(It is not clear what the petition asks for)"
    ) in page
    assert f'Sam Second hid <a href="/moderation/petitions/{hidden.id}">Hidden by Sam</a> (Names a colleague.)' in page
    assert "The queue is empty." in page


def test_the_moderation_queue_lists_waiting_petitions_oldest_first(browser: Browser, db, rt, clock) -> None:
    first = factories.petition_in_moderation(db, rt, title="Waiting longest")
    clock.advance(timedelta(hours=1))
    second = factories.petition_in_moderation(db, rt, title="Waiting shortest")
    factories.open_petition(db, rt, title="Already open")
    sign_in_as(browser, db, moderator_named(db, "Rita Reviewer"))

    queue = browser.api("GET", "/api/v1/moderation/queue").json()

    assert [item["id"] for item in queue] == [first.id, second.id]
    table = browser.get("/moderation").text.split("Recent decisions")[0]
    assert table.index("Waiting longest") < table.index("Waiting shortest") and "Already open" not in table
