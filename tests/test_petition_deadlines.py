"""Thresholds that fire once, and deadlines that close a petition (on read and by the periodic job)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from app.petitions import service
from app.signatures import service as signatures
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
    listed_ids,
    reload,
    sign,
    squash,
    visitor,
    with_settings,
)

# -- thresholds -------------------------------------------------------------------------------------------------


def test_crossing_the_response_threshold_starts_the_response_clock_exactly_once(new_browser, db, rt, clock) -> None:
    small = with_settings(rt, response_threshold=2)
    creator = factories.worker(db)
    petition = factories.open_petition(db, small, creator)
    assert (petition.response_threshold, petition.escalation_threshold) == (2, 1000)

    visitor(new_browser, db, factories.worker(db)).post(f"/petitions/{petition.id}/sign", {"visibility": "public"})
    assert reload(db, petition).response_threshold_reached_at is None
    clock.advance(timedelta(hours=2))
    crossing_time = clock.now()
    visitor(new_browser, db, factories.worker(db)).post(f"/petitions/{petition.id}/sign", {"visibility": "organizers"})
    clock.advance(timedelta(hours=2))
    for _ in range(2):
        sign(db, small, petition)

    fresh = reload(db, petition)
    assert fresh.signature_count == 4
    assert fresh.response_threshold_reached_at == crossing_time
    assert fresh.response_due_at == crossing_time + timedelta(days=14)
    assert event_kinds(db, petition).count("response_threshold_reached") == 1
    assert event_kinds(db, petition).count("response_due") == 1
    assert [message.template for message in outbox(db, creator.email)].count("threshold_reached") == 1
    page = visitor(new_browser, db).get(f"/petitions/{petition.id}").text
    assert "Leadership must respond by <strong>08 December 2026</strong>" in page


def test_a_withdrawal_and_a_new_signature_do_not_fire_the_threshold_again(db, rt, clock) -> None:
    small = with_settings(rt, response_threshold=2)
    petition = factories.open_petition(db, small)
    sign(db, small, petition)
    leaver = sign(db, small, petition)
    reached_at = reload(db, petition).response_threshold_reached_at
    assert reached_at == UTC_NOW

    clock.advance(timedelta(days=1))
    signatures.withdraw(db=db, petition=petition, user=leaver)
    db.commit()
    assert reload(db, petition).signature_count == 1
    sign(db, small, reload(db, petition), leaver)

    fresh = reload(db, petition)
    assert (fresh.signature_count, fresh.withdrawal_count) == (2, 1)
    assert fresh.response_threshold_reached_at == reached_at
    assert fresh.response_due_at == reached_at + timedelta(days=14)
    assert event_kinds(db, petition).count("response_threshold_reached") == 1


def test_a_petition_below_the_threshold_shows_how_many_more_are_needed(browser: Browser, db, rt) -> None:
    petition = factories.open_petition(db, rt)
    sign(db, rt, petition)

    page = squash(re.sub(r"<[^>]+>", "", browser.get(f"/petitions/{petition.id}").text))  # the words, not tags

    assert "99 more to reach 100, when leadership must respond" in page
    assert reload(db, petition).response_threshold_reached_at is None


# -- deadlines --------------------------------------------------------------------------------------------------


def test_an_open_petition_past_its_deadline_is_closed_when_its_page_is_read(browser: Browser, db, rt, clock) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator, deadline=date(2026, 11, 25))
    sign_in_as(browser, db, factories.worker(db))
    clock.advance(timedelta(days=1, hours=14))  # 2026-11-25 23:00: not yet
    assert "Sign this petition</button>" in browser.get(f"/petitions/{petition.id}").text
    assert reload(db, petition).state == "open"

    clock.advance(timedelta(hours=1))  # 2026-11-26 00:00
    page = browser.get(f"/petitions/{petition.id}")

    assert page.status_code == 200 and "Sign this petition</button>" not in page.text
    fresh = reload(db, petition)
    assert (fresh.state, fresh.closed_at) == ("closed", clock.now())
    closed = [item for item in events(db, petition) if item.kind == "closed"]
    assert [(item.actor_id, item.detail) for item in closed] == [(None, "The deadline passed.")]
    assert [message.template for message in outbox(db, creator.email)][-1] == "petition_closed"
    browser.get(f"/petitions/{petition.id}")
    assert event_kinds(db, petition).count("closed") == 1


def test_a_refused_comment_on_a_petition_past_its_deadline_still_closes_it(browser: Browser, db, rt, clock) -> None:
    # The closing is the read's own work (ReadablePetition), not the refused comment's: the refusal rolls back what
    # the comment wrote, and used to take the closing with it, leaving the petition open in the database.
    petition = factories.open_petition(db, rt, deadline=date(2026, 11, 25))
    sign_in_as(browser, db, factories.worker(db))
    clock.advance(timedelta(days=3))

    response = browser.post(f"/petitions/{petition.id}/comments", {"body": "Is it too late to say this?"})

    assert response.status_code == 409 and "read-only" in response.text
    assert reload(db, petition).state == "closed"
    assert event_kinds(db, petition).count("closed") == 1


def test_the_api_read_closes_an_expired_petition_too(browser: Browser, db, rt, clock) -> None:
    petition = factories.open_petition(db, rt, deadline=date(2026, 11, 25))
    clock.advance(timedelta(days=3))

    response = browser.api("GET", f"/api/v1/petitions/{petition.id}")

    assert response.json()["state"] == "closed" and reload(db, petition).state == "closed"


def test_signing_an_expired_petition_is_refused(browser: Browser, db, rt, clock) -> None:
    petition = factories.open_petition(db, rt, deadline=date(2026, 11, 25))
    sign_in_as(browser, db, factories.worker(db))
    clock.advance(timedelta(days=3))

    response = browser.post(f"/petitions/{petition.id}/sign", {"visibility": "public"})

    assert response.status_code == 409 and "closed" in response.text
    assert count_rows(db, "signatures") == 0


def test_the_periodic_job_closes_every_expired_petition(db, rt, clock) -> None:
    expired = [
        factories.open_petition(db, rt, title=f"Expiring {n}", deadline=date(2026, 11, 25 + n)) for n in range(2)
    ]
    later = factories.open_petition(db, rt, title="Later", deadline=date(2026, 12, 20))
    endless = factories.open_petition(db, rt, title="Endless")
    clock.advance(timedelta(days=3))

    closed = service.close_expired(db=db, rt=rt)
    db.commit()

    assert closed == 2
    assert [reload(db, p).state for p in (*expired, later, endless)] == ["closed", "closed", "open", "open"]
    assert service.close_expired(db=db, rt=rt) == 0


def test_an_expired_petition_is_not_listed_as_open_before_the_job_runs(browser: Browser, db, rt, clock) -> None:
    petition = factories.open_petition(db, rt, deadline=date(2026, 11, 25))
    clock.advance(timedelta(days=3))

    listed = listed_ids(browser.get("/petitions?state=open").text)
    api = [item["state"] for item in browser.api("GET", "/api/v1/petitions?state=all").json()["items"]]

    assert petition.id not in listed
    assert api == ["closed"]
