"""Sponsors: the private link, confirming, and what happens when a petition has enough."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models.petitions import PetitionOrganizer, PetitionVersion
from app.petitions import service
from tests import factories
from tests.conftest import (
    Browser,
    count_rows,
    outbox,
    sign_in_as,
)
from tests.petition_steps import (
    UTC_NOW,
    event_kinds,
    events,
    reload,
    rows,
    site,  # noqa: F401  (a fixture, asked for by name)
    visitor,
)

pytestmark = pytest.mark.one_database


def test_submitting_a_draft_fixes_its_text_as_version_one(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.draft_petition(db, rt, creator)
    sign_in_as(browser, db, creator)

    response = browser.post(f"/petitions/{petition.id}/submit")

    assert response.status_code == 303
    fresh = reload(db, petition)
    assert (fresh.state, fresh.version, fresh.sponsors_requested_at) == ("gathering_sponsors", 1, UTC_NOW)
    version = db.scalar(select(PetitionVersion).where(PetitionVersion.petition_id == petition.id))
    assert version is not None and version.number == 1 and version.author_id == creator.id
    assert version.content_hash == service.content_hash(
        title=fresh.title, ask=fresh.ask, background=fresh.background, decision_maker=fresh.decision_maker
    )
    page = browser.get(f"/petitions/{petition.id}")
    assert service.sponsor_url(rt=rt, petition=fresh) in page.text
    assert browser.post(f"/petitions/{petition.id}/submit").status_code == 409  # only once


def test_three_colleagues_sponsor_through_the_link_and_the_petition_goes_to_moderation(new_browser, db, rt) -> None:
    creator = factories.worker(db, name="Casey Creator")
    co_organizer = factories.worker(db, name="Cory Coorganizer")
    petition = factories.petition_gathering_sponsors(db, rt, creator)
    db.add(PetitionOrganizer(petition_id=petition.id, user_id=co_organizer.id, is_creator=False, added_at=UTC_NOW))
    db.commit()
    link = service.sponsor_url(rt=rt, petition=petition)
    sponsors = [factories.worker(db, name=f"Sponsor {number}") for number in range(3)]

    for number, sponsor in enumerate(sponsors, start=1):
        browser = visitor(new_browser, db, sponsor)
        page = browser.get(link)
        assert page.status_code == 200
        assert f'action="{link}"' in page.text and "Sponsor this petition</button>" in page.text
        assert browser.post(link).status_code == 303
        assert "You sponsor this petition." in browser.get(link).text
        assert reload(db, petition).sponsor_count == number
        if number < 3:
            assert reload(db, petition).state == "gathering_sponsors"
            assert outbox(db) == []

    fresh = reload(db, petition)
    assert (fresh.state, fresh.moderation_requested_at) == ("in_moderation", UTC_NOW)
    assert count_rows(db, "sponsorships") == 3
    assert "sent_to_moderation" in event_kinds(db, petition)
    told = {(message.to_address, message.template) for message in outbox(db)}
    assert told == {(creator.email, "petition_in_moderation"), (co_organizer.email, "petition_in_moderation")}


def test_the_sponsor_page_shows_no_button_to_an_organizer(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.petition_gathering_sponsors(db, rt, creator)
    sign_in_as(browser, db, creator)

    page = browser.get(service.sponsor_url(rt=rt, petition=petition))

    assert page.status_code == 200 and "You organize this petition" in page.text
    assert "Sponsor this petition</button>" not in page.text


def test_an_organizer_cannot_sponsor_their_own_petition(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.petition_gathering_sponsors(db, rt, creator)
    sign_in_as(browser, db, creator)
    before = rows(db)

    response = browser.post(service.sponsor_url(rt=rt, petition=petition))

    assert response.status_code == 409 and "You organize this petition" in response.text
    assert rows(db) == before and reload(db, petition).sponsor_count == 0


def test_sponsoring_twice_is_refused_and_counted_once(browser: Browser, db, rt) -> None:
    petition = factories.petition_gathering_sponsors(db, rt)
    sign_in_as(browser, db, factories.worker(db))
    link = service.sponsor_url(rt=rt, petition=petition)
    assert browser.post(link).status_code == 303
    before = rows(db)

    again = browser.post(link)

    assert again.status_code == 409 and "You already sponsor this petition." in again.text
    assert rows(db) == before and reload(db, petition).sponsor_count == 1
    api = browser.api("POST", f"/api/v1/petitions/{petition.id}/sponsorships", {"token": link.rsplit("/", 1)[1]})
    assert api.status_code == 409 and reload(db, petition).sponsor_count == 1


@pytest.mark.parametrize("token", ["0" * 40, "not-the-token", "a" * 64])
def test_a_bad_sponsor_token_is_not_found(browser: Browser, db, rt, token: str) -> None:
    petition = factories.petition_gathering_sponsors(db, rt)
    sign_in_as(browser, db, factories.worker(db))
    before = rows(db)

    assert browser.get(f"/petitions/{petition.id}/sponsor/{token}").status_code == 404
    response = browser.post(f"/petitions/{petition.id}/sponsor/{token}")

    assert response.status_code == 404 and "This sponsor link is not valid." in response.text
    assert rows(db) == before


def test_the_right_token_with_extra_characters_is_not_found(browser: Browser, db, rt) -> None:
    petition = factories.petition_gathering_sponsors(db, rt)
    sign_in_as(browser, db, factories.worker(db))

    response = browser.post(service.sponsor_url(rt=rt, petition=petition) + "extra")

    assert response.status_code == 404 and reload(db, petition).sponsor_count == 0


def test_a_sponsor_token_with_non_ascii_characters_is_not_found(browser: Browser, db, rt) -> None:
    petition = factories.petition_gathering_sponsors(db, rt)
    sign_in_as(browser, db, factories.worker(db))

    assert browser.get(f"/petitions/{petition.id}/sponsor/caf%C3%A9").status_code == 404


def test_a_token_of_another_petition_is_not_found(browser: Browser, db, rt) -> None:
    petition = factories.petition_gathering_sponsors(db, rt)
    other = factories.petition_gathering_sponsors(db, rt, title="Another one")
    sign_in_as(browser, db, factories.worker(db))
    other_token = service.sponsor_token(rt=rt, petition=other)

    assert browser.post(f"/petitions/{petition.id}/sponsor/{other_token}").status_code == 404


def test_without_required_sponsors_a_submitted_draft_goes_straight_to_moderation(site, db) -> None:
    configured = site(sponsors_required=0)
    creator = factories.worker(db)
    petition = factories.draft_petition(db, configured.rt, creator)
    browser = configured.browser(db, creator)

    assert browser.post(f"/petitions/{petition.id}/submit").status_code == 303

    fresh = reload(db, petition)
    assert (fresh.state, fresh.version, fresh.sponsor_count) == ("in_moderation", 1, 0)
    assert event_kinds(db, petition)[-2:] == ["sent_to_sponsors", "sent_to_moderation"]
    assert [message.template for message in outbox(db, creator.email)] == ["petition_in_moderation"]


def test_without_moderation_the_last_sponsor_opens_the_petition(site, db) -> None:
    configured = site(moderation_enabled=False)
    creator = factories.worker(db)
    petition = factories.petition_gathering_sponsors(db, configured.rt, creator)
    link = service.sponsor_url(rt=configured.rt, petition=petition)

    for _ in range(3):
        assert configured.browser(db, factories.worker(db)).post(link).status_code == 303

    fresh = reload(db, petition)
    assert (fresh.state, fresh.opened_at, fresh.response_threshold) == ("open", UTC_NOW, 100)
    opened = [item for item in events(db, petition) if item.kind == "opened"]
    assert len(opened) == 1 and opened[0].actor_id is None
    assert "sent_to_moderation" not in event_kinds(db, petition)
    assert [message.template for message in outbox(db, creator.email)] == ["petition_opened"]
    assert configured.browser(db).get(f"/petitions/{petition.id}").status_code == 200


def test_without_moderation_or_sponsors_submitting_opens_the_petition(site, db) -> None:
    configured = site(moderation_enabled=False, sponsors_required=0)
    creator = factories.worker(db)
    petition = factories.draft_petition(db, configured.rt, creator)

    assert configured.browser(db, creator).post(f"/petitions/{petition.id}/submit").status_code == 303

    assert reload(db, petition).state == "open"
    assert event_kinds(db, petition)[-2:] == ["sent_to_sponsors", "opened"]
