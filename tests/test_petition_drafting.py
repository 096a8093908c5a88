"""Drafting a petition: ideas and similar petitions, the draft form, editing a draft."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import select

from app.models.petitions import Petition, PetitionOrganizer
from tests import factories
from tests.conftest import (
    Browser,
    count_rows,
    sign_in_as,
)
from tests.petition_steps import (
    full_form,
    listed_ids,
    reload,
    rows,
    similar_titles,
    visitor,
)

pytestmark = pytest.mark.one_database


def test_checking_an_idea_shows_up_to_five_similar_open_petitions_and_writes_nothing(
    browser: Browser, new_browser, db, rt
) -> None:
    for number in range(1, 7):
        factories.open_petition(
            db,
            rt,
            title=f"Screen recording petition {number}",
            ask="No recording of our screens.",
            background="Screens are private.",
        )
    factories.closed_petition(
        db, rt, title="Closed screen recording petition", ask="No screen recording.", background="Screens again."
    )
    factories.draft_petition(
        db, rt, title="Draft screen recording petition", ask="No screen recording.", background="Screens again."
    )
    factories.open_petition(
        db,
        rt,
        title="Free coffee on Fridays",
        ask="Provide free coffee every Friday.",
        background="Coffee helps people talk.",
    )
    sign_in_as(browser, db, factories.worker(db))
    before = rows(db)

    response = browser.post(
        "/petitions/new", {"title": "Ban screen recording", "ask": "Recording screens harms trust."}
    )

    assert response.status_code == 200
    assert "These open petitions may already ask for this" in response.text
    titles = similar_titles(response.text)
    assert len(titles) == 5
    assert all(title.startswith("Screen recording petition") for title in titles)
    # The full form follows, carrying what was typed in stage one.
    assert 'action="/petitions"' in response.text and 'name="background"' in response.text
    assert 'value="Ban screen recording"' in response.text
    assert rows(db) == before


def test_checking_an_idea_with_nothing_similar_shows_no_list(browser: Browser, db, rt) -> None:
    factories.open_petition(
        db,
        rt,
        title="Free coffee on Fridays",
        ask="Provide free coffee every Friday.",
        background="Coffee helps people talk.",
    )
    sign_in_as(browser, db, factories.worker(db))

    response = browser.post("/petitions/new", {"title": "Quieter meeting rooms", "ask": "Add sound insulation."})

    assert response.status_code == 200
    assert similar_titles(response.text) == [] and "may already ask for this" not in response.text


def test_saving_the_full_form_creates_a_draft_only_its_organizers_can_see(browser: Browser, new_browser, db) -> None:
    creator = factories.worker(db, name="Casey Creator")
    sign_in_as(browser, db, creator)

    response = browser.post("/petitions", full_form(deadline="2026-12-31"))

    assert response.status_code == 303
    petition_id = int(re.fullmatch(r"/petitions/(\d+)", response.headers["location"]).group(1))  # type: ignore[union-attr]
    petition = db.get(Petition, petition_id)
    assert petition is not None
    assert (petition.state, petition.title, petition.creator_id, petition.version) == (
        "draft",
        "Four-day week pilot",
        creator.id,
        0,
    )
    assert petition.allow_anonymous is False and petition.collect_attributes is True
    assert petition.deadline == datetime.fromisoformat("2026-12-31T23:59:59+00:00")
    organizers = db.scalars(select(PetitionOrganizer).where(PetitionOrganizer.petition_id == petition_id)).all()
    assert [(o.user_id, o.is_creator) for o in organizers] == [(creator.id, True)]
    assert count_rows(db, "petition_versions") == 0  # a draft has no published version yet

    page = browser.get(f"/petitions/{petition_id}")
    assert page.status_code == 200 and "Four-day week pilot" in page.text and "Edit the draft" in page.text
    assert visitor(new_browser, db, factories.worker(db)).get(f"/petitions/{petition_id}").status_code == 404
    assert visitor(new_browser, db).get(f"/petitions/{petition_id}").status_code == 404
    assert visitor(new_browser, db).api("GET", f"/api/v1/petitions/{petition_id}").status_code == 404


def test_the_api_creates_a_draft_for_its_caller(browser: Browser, new_browser, db) -> None:
    creator = factories.worker(db)
    sign_in_as(browser, db, creator)

    response = browser.api(
        "POST",
        "/api/v1/petitions",
        {
            "title": "Four-day week pilot",
            "ask": "Run a pilot.",
            "background": "Focus improves.",
            "category": "workplace",
            "deadline": "2026-12-31",
        },
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["state"], body["version"], body["sponsor_count"], body["rejection"]) == ("draft", 0, 0, None)
    assert browser.api("GET", f"/api/v1/petitions/{body['id']}").status_code == 200
    assert (
        visitor(new_browser, db, factories.worker(db)).api("GET", f"/api/v1/petitions/{body['id']}").status_code == 404
    )


def test_a_draft_appears_in_no_listing(browser: Browser, db, rt) -> None:
    factories.draft_petition(db, rt, title="Secret draft about parking")
    for state in ("open", "closed", "all"):
        assert listed_ids(browser.get(f"/petitions?state={state}").text) == []
        assert browser.api("GET", f"/api/v1/petitions?state={state}").json()["total"] == 0


@pytest.mark.parametrize(
    ("changes", "field_name", "message"),
    [
        ({"title": ""}, "title", "This is required."),
        ({"title": "   "}, "title", "This is required."),
        ({"title": "x" * 10_000}, "title", "Use at most 120 characters."),
        ({"title": "x" * 121}, "title", "Use at most 120 characters."),
        ({"ask": ""}, "ask", "This is required."),
        ({"category": "astrology"}, "category", "Choose one of the listed categories."),
        ({"category": ""}, "category", "This is required."),
        ({"deadline": "2026-11-24"}, "deadline", "Choose a date after today, or leave it empty."),
        ({"deadline": "2026-10-01"}, "deadline", "Choose a date after today, or leave it empty."),
        ({"deadline": "2028-01-01"}, "deadline", "Choose a date within a year."),
        ({"deadline": "next tuesday"}, "deadline", "Enter a date like 2027-03-31."),
    ],
    ids=[
        "empty-title",
        "blank-title",
        "10000-char-title",
        "121-char-title",
        "empty-ask",
        "unknown-category",
        "no-category",
        "deadline-today",
        "deadline-past",
        "deadline-too-far",
        "deadline-not-a-date",
    ],
)
def test_a_draft_with_bad_input_is_refused_with_a_clear_message_and_nothing_is_written(
    browser: Browser, db, changes: dict[str, str], field_name: str, message: str
) -> None:
    sign_in_as(browser, db, factories.worker(db))
    before = rows(db)

    response = browser.post("/petitions", full_form(**changes))

    assert response.status_code == 422
    assert f'id="{field_name}-error">{message}' in response.text
    assert f'<a href="#{field_name}">{message}</a>' in response.text, "the summary leads to the field"
    assert rows(db) == before


def test_a_title_of_exactly_120_characters_is_accepted(browser: Browser, db) -> None:
    sign_in_as(browser, db, factories.worker(db))

    response = browser.post("/petitions", full_form(title="x" * 120))

    assert response.status_code == 303 and count_rows(db, "petitions") == 1


def test_the_idea_stage_refuses_a_title_too_long_and_writes_nothing(browser: Browser, db) -> None:
    sign_in_as(browser, db, factories.worker(db))
    before = rows(db)

    response = browser.post("/petitions/new", {"title": "x" * 10_000, "ask": "Something."})

    assert response.status_code == 422 and "Use at most 120 characters." in response.text
    assert rows(db) == before


def test_the_api_refuses_an_unknown_category_and_writes_nothing(browser: Browser, db) -> None:
    sign_in_as(browser, db, factories.worker(db))
    before = rows(db)

    body = {key: value for key, value in full_form(category="astrology").items() if value}
    body["collect_attributes"] = True  # type: ignore[assignment]
    response = browser.api("POST", "/api/v1/petitions", body)

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"category": "Choose one of the listed categories."}
    assert rows(db) == before


def test_editing_a_petition_that_is_no_longer_a_draft_is_refused(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.petition_gathering_sponsors(db, rt, creator)
    sign_in_as(browser, db, creator)
    before = rows(db)

    response = browser.post(f"/petitions/{petition.id}/edit", full_form(title="Sneaky new title"))

    assert response.status_code == 409
    assert "no longer a draft" in response.text
    assert reload(db, petition).title == "Stop recording our screens to train AI"
    assert rows(db) == before


def test_editing_a_draft_changes_it_in_place(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.draft_petition(db, rt, creator)
    sign_in_as(browser, db, creator)

    response = browser.post(f"/petitions/{petition.id}/edit", full_form(title="A better title", category="pay"))

    assert response.status_code == 303
    fresh = reload(db, petition)
    assert (fresh.title, fresh.version, fresh.state) == ("A better title", 0, "draft")
    assert count_rows(db, "petition_versions") == 0
