"""Finding petitions: lists, filters, sorting, search, categories."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Connection

from app.models.petitions import Petition
from app.petitions import service
from app.petitions.schemas import PetitionCorrection
from tests import factories
from tests.conftest import (
    Browser,
    counting_statements,
    sign_in_as,
)
from tests.petition_steps import (
    listed_ids,
    moderator_named,
    sign,
    visitor,
    with_settings,
)


@pytest.fixture
def catalogue(db, rt, clock) -> dict[str, Petition]:
    """Listed petitions in known states, categories, ages, deadlines and counts."""
    small = with_settings(rt, response_threshold=2)
    made: dict[str, Petition] = {}
    made["canteen"] = factories.open_petition(
        db,
        rt,
        title="Healthier canteen food",
        category="wellbeing",
        ask="Offer a vegetarian dish daily.",
        background="The xylophone rehearsal room is next to the canteen.",
        deadline=date(2026, 12, 20),
    )
    clock.advance(timedelta(hours=1))
    made["bonus"] = factories.open_petition(
        db,
        small,
        title="Publish the bonus formula",
        category="pay",
        ask="Publish how bonuses are computed.",
        background="Nobody knows how the bonus pool is split.",
        deadline=date(2026, 12, 1),
    )
    clock.advance(timedelta(hours=1))
    made["parking"] = factories.open_petition(
        db,
        rt,
        title="More bicycle parking",
        category="workplace",
        ask="Double the bicycle racks.",
        background="Racks are always full.",
    )
    clock.advance(timedelta(hours=1))
    made["closed"] = factories.closed_petition(
        db,
        rt,
        title="Summer hours",
        category="workplace",
        ask="Finish at three on Fridays in summer.",
        background="Summer is short.",
    )
    made["waiting"] = factories.petition_in_moderation(
        db, rt, title="Waiting in moderation", category="pay", ask="Pay overtime.", background="Overtime is unpaid."
    )
    for _ in range(3):
        sign(db, small, made["bonus"])
    sign(db, rt, made["canteen"])
    return made


def _ids(catalogue: dict[str, Petition], *names: str) -> list[int]:
    return [catalogue[name].id for name in names]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=open", ["bonus", "canteen", "parking"]),
        ("state=closed", ["closed"]),
        ("state=awaiting_response", ["bonus"]),
        ("state=all", ["bonus", "canteen", "closed", "parking"]),  # ties: newest id first
        ("state=open&category=pay", ["bonus"]),
        ("state=all&category=workplace", ["closed", "parking"]),
        ("state=open&sort=newest", ["parking", "bonus", "canteen"]),
        ("state=open&sort=most_signed", ["bonus", "canteen", "parking"]),
        ("state=open&sort=closing_soon", ["bonus", "canteen"]),
        ("state=all&q=xylophone", ["canteen"]),
        ("state=all&q=xylophone%20rehearsal", ["canteen"]),
        ("state=all&q=xylophone%20bonus", []),
        ("state=all&q=summer", ["closed"]),
        ("state=all&q=%22%3B%20DROP%20TABLE%20petitions", []),
    ],
    ids=[
        "open",
        "closed",
        "awaiting-response",
        "all",
        "category",
        "category-all-states",
        "newest",
        "most-signed",
        "closing-soon",
        "search-background-word",
        "search-all-words",
        "search-needs-every-word",
        "search-closed",
        "search-syntax-is-inert",
    ],
)
def test_discovery_filters_sorts_and_searches_the_same_on_the_page_and_in_the_api(
    browser: Browser, catalogue: dict[str, Petition], query: str, expected: list[str]
) -> None:
    page = browser.get(f"/petitions?{query}")
    api = browser.api("GET", f"/api/v1/petitions?{query}")

    assert page.status_code == 200 and api.status_code == 200
    assert listed_ids(page.text) == _ids(catalogue, *expected)
    assert [item["id"] for item in api.json()["items"]] == _ids(catalogue, *expected)
    assert api.json()["total"] == len(expected)


def test_common_words_in_a_search_do_not_hide_a_match(browser: Browser, catalogue: dict[str, Petition]) -> None:
    api = browser.api("GET", "/api/v1/petitions?state=all&q=racks%20for%20bicycles").json()

    assert [item["id"] for item in api["items"]] == _ids(catalogue, "parking")


def test_closing_soon_lists_only_petitions_with_a_deadline_soonest_first(
    browser: Browser, catalogue: dict[str, Petition]
) -> None:
    page = browser.get("/petitions?state=open&sort=closing_soon")
    api = browser.api("GET", "/api/v1/petitions?state=open&sort=closing_soon")

    assert listed_ids(page.text) == _ids(catalogue, "bonus", "canteen")
    assert [item["id"] for item in api.json()["items"]] == _ids(catalogue, "bonus", "canteen")


def test_a_petition_appears_in_newest_once_it_is_opened(
    browser: Browser, new_browser, db, rt, clock, catalogue: dict[str, Petition]
) -> None:
    waiting = catalogue["waiting"]
    assert waiting.id not in listed_ids(browser.get("/petitions?state=all&sort=newest").text)

    clock.advance(timedelta(hours=1))
    visitor(new_browser, db, moderator_named(db, "Rita Reviewer")).api(
        "POST", f"/api/v1/moderation/petitions/{waiting.id}/open"
    )

    assert listed_ids(browser.get("/petitions?sort=newest").text)[0] == waiting.id
    assert browser.api("GET", "/api/v1/petitions?sort=newest").json()["items"][0]["id"] == waiting.id


def test_search_finds_a_corrected_text_and_forgets_the_old_one(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator, background="The harpsichord is out of tune.")
    assert listed_ids(browser.get("/petitions?q=harpsichord").text) == [petition.id]

    service.correct_text(
        db=db,
        rt=rt,
        petition=petition,
        actor=creator,
        form=PetitionCorrection(
            title=petition.title,
            ask=petition.ask,
            background="The clavichord is out of tune.",
            decision_maker=petition.decision_maker,
            note="Wrong instrument.",
        ),
    )
    db.commit()

    assert listed_ids(browser.get("/petitions?q=harpsichord").text) == []
    assert listed_ids(browser.get("/petitions?q=clavichord").text) == [petition.id]


def test_the_page_lists_twenty_petitions_and_links_to_the_next_page(browser: Browser, db, rt) -> None:
    for number in range(21):
        factories.open_petition(db, rt, title=f"Petition number {number}")

    first, second = browser.get("/petitions?sort=newest"), browser.get("/petitions?sort=newest&page=2")

    assert len(listed_ids(first.text)) == 20 and len(listed_ids(second.text)) == 1
    assert "Page 1 of 2" in first.text and "21 petitions" in first.text
    assert set(listed_ids(first.text)).isdisjoint(listed_ids(second.text))


def _list_queries(browser: Browser, connection: Connection) -> tuple[int, int]:
    with counting_statements(connection) as page_statements:
        page = browser.get("/petitions?state=all")
    with counting_statements(connection) as api_statements:
        api = browser.api("GET", "/api/v1/petitions?state=all&per_page=50")
    assert page.status_code == 200 and api.status_code == 200
    return len(page_statements), len(api_statements)


def test_list_pages_run_the_same_number_of_queries_for_3_and_for_25_petitions(
    browser: Browser, db, rt, connection: Connection
) -> None:
    sign_in_as(browser, db, factories.worker(db))
    categories = ["pay", "privacy", "workplace", "wellbeing", "policy"]

    def add(number: int) -> None:
        petition = factories.open_petition(
            db,
            rt,
            title=f"Listed petition {number}",
            category=categories[number % len(categories)],
            deadline=date(2026, 12, 1 + number % 20),
        )
        if number % 3 == 0:
            sign(db, rt, petition)
        if number % 4 == 0:
            service.close(db=db, rt=rt, petition=petition, actor=None, reason="Done.")
            db.commit()

    for number in range(3):
        add(number)
    browser.get("/petitions")  # warm up what is built once per process
    with_three = _list_queries(browser, connection)
    assert len(listed_ids(browser.get("/petitions?state=all").text)) == 3

    for number in range(3, 25):
        add(number)
    with_twenty_five = _list_queries(browser, connection)
    assert len(listed_ids(browser.get("/petitions?state=all").text)) == 20
    assert browser.api("GET", "/api/v1/petitions?state=all&per_page=50").json()["total"] == 25

    assert with_twenty_five == with_three
