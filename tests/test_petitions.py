"""Petitions as people use them: drafting, sponsors, moderation, corrections, thresholds, deadlines, discovery,
organizers and followers, through the pages and the API (and the services where time or settings matter)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role, User
from app.core.runtime import Runtime
from app.petitions import service
from app.petitions.models import Follow, Petition, PetitionEvent, PetitionOrganizer, PetitionUpdate, PetitionVersion
from app.petitions.schemas import PetitionCorrection
from app.signatures import service as signatures
from tests import factories
from tests.conftest import (
    Browser,
    build_test_app,
    capture_logs,
    count_rows,
    counting_statements,
    make_settings,
    outbox,
    sign_in_as,
)

UTC_NOW = datetime.fromisoformat("2026-11-24T09:00:00+00:00")
WRITTEN_TABLES = (
    "petitions",
    "petition_events",
    "petition_organizers",
    "petition_versions",
    "sponsorships",
    "petition_updates",
    "outbox_messages",
)


# -- helpers ----------------------------------------------------------------------------------------------------

BrowserFactory = Callable[[], Browser]


def visitor(new_browser: BrowserFactory, db: Session, user: User | None = None) -> Browser:
    """A separate browser, signed in as `user` (or signed out)."""
    browser = new_browser()
    return sign_in_as(browser, db, user) if user is not None else browser


def rows(db: Session) -> dict[str, int]:
    return {table: count_rows(db, table) for table in WRITTEN_TABLES}


def events(db: Session, petition: Petition) -> list[PetitionEvent]:
    db.expire_all()
    return list(
        db.scalars(select(PetitionEvent).where(PetitionEvent.petition_id == petition.id).order_by(PetitionEvent.id))
    )


def event_kinds(db: Session, petition: Petition) -> list[str]:
    return [item.kind for item in events(db, petition)]


def reload(db: Session, petition: Petition) -> Petition:
    db.expire_all()
    fresh = db.get(Petition, petition.id)
    assert fresh is not None
    return fresh


def squash(html: str) -> str:
    return re.sub(r"\s+", " ", html)


def listed_ids(html: str) -> list[int]:
    return [
        int(found)
        for found in re.findall(r'<article class="card">\s*<h\d class="card-title"><a href="/petitions/(\d+)">', html)
    ]


def similar_titles(html: str) -> list[str]:
    section = re.search(r'<section class="similar".*?</section>', html, re.DOTALL)
    if section is None:
        return []
    return re.findall(r'<li><a href="/petitions/\d+">([^<]*)</a>', section.group(0))


def full_form(**changes: str) -> dict[str, str]:
    values = {
        "title": "Four-day week pilot",
        "ask": "Run a six-month four-day week pilot in one department.",
        "background": "Other companies report better focus and fewer sick days.",
        "decision_maker": "Chief Operating Officer",
        "category": "workplace",
        "deadline": "",
        "collect_attributes": "on",
    }
    values.update(changes)
    return values


def fan_out(connection: Connection, rt: Runtime) -> int:
    """What the worker does next: queue mail for announced events, in batches."""
    from app.responses import delivery

    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    return delivery.deliver_notifications(sessions=sessions, rt=rt, batch=2)


def sign(
    db: Session,
    rt: Runtime,
    petition: Petition,
    user: User | None = None,
    *,
    notify_updates: bool = False,
    visibility: str = "public",
) -> User:
    user = user or factories.worker(db)
    signatures.sign(
        db=db, rt=rt, petition_id=petition.id, user=user, visibility=visibility, notify_updates=notify_updates
    )
    db.commit()
    return user


def with_settings(rt: Runtime, **updates: object) -> Runtime:
    return dataclasses.replace(rt, settings=rt.settings.model_copy(update=updates))


@dataclass
class Site:
    """An app built with other settings, on the test's connection, so everything is rolled back."""

    app: FastAPI
    clients: list[TestClient] = field(default_factory=list)

    @property
    def rt(self) -> Runtime:
        return self.app.state.runtime

    def browser(self, db: Session, user: User | None = None) -> Browser:
        client = TestClient(self.app, base_url="http://testserver", follow_redirects=False)
        client.__enter__()
        self.clients.append(client)
        browser = Browser(client)
        return sign_in_as(browser, db, user) if user is not None else browser


@pytest.fixture
def site(database_url: str, connection: Connection, clock) -> Iterator[Callable[..., Site]]:  # type: ignore[no-untyped-def]
    built: list[Site] = []

    def build(**overrides: object) -> Site:
        built.append(Site(build_test_app(make_settings(database_url, **overrides), connection, clock)))
        return built[-1]

    yield build
    for each in built:
        for client in each.clients:
            client.__exit__(None, None, None)


def moderator_named(db: Session, name: str) -> User:
    return factories.worker(db, name=name, roles=(Role.moderator,))


# -- drafting ---------------------------------------------------------------------------------------------------


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


def test_checking_an_idea_with_nothing_similar_shows_no_list(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_saving_the_full_form_creates_a_draft_only_its_organizers_can_see(browser: Browser, new_browser, db) -> None:  # type: ignore[no-untyped-def]
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


def test_the_api_creates_a_draft_for_its_caller(browser: Browser, new_browser, db) -> None:  # type: ignore[no-untyped-def]
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


def test_a_draft_appears_in_no_listing(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_a_title_of_exactly_120_characters_is_accepted(browser: Browser, db) -> None:  # type: ignore[no-untyped-def]
    sign_in_as(browser, db, factories.worker(db))

    response = browser.post("/petitions", full_form(title="x" * 120))

    assert response.status_code == 303 and count_rows(db, "petitions") == 1


def test_the_idea_stage_refuses_a_title_too_long_and_writes_nothing(browser: Browser, db) -> None:  # type: ignore[no-untyped-def]
    sign_in_as(browser, db, factories.worker(db))
    before = rows(db)

    response = browser.post("/petitions/new", {"title": "x" * 10_000, "ask": "Something."})

    assert response.status_code == 422 and "Use at most 120 characters." in response.text
    assert rows(db) == before


def test_the_api_refuses_an_unknown_category_and_writes_nothing(browser: Browser, db) -> None:  # type: ignore[no-untyped-def]
    sign_in_as(browser, db, factories.worker(db))
    before = rows(db)

    body = {key: value for key, value in full_form(category="astrology").items() if value}
    body["collect_attributes"] = True  # type: ignore[assignment]
    response = browser.api("POST", "/api/v1/petitions", body)

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"category": "Choose one of the listed categories."}
    assert rows(db) == before


def test_editing_a_petition_that_is_no_longer_a_draft_is_refused(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.petition_gathering_sponsors(db, rt, creator)
    sign_in_as(browser, db, creator)
    before = rows(db)

    response = browser.post(f"/petitions/{petition.id}/edit", full_form(title="Sneaky new title"))

    assert response.status_code == 409
    assert "no longer a draft" in response.text
    assert reload(db, petition).title == "Stop recording our screens to train AI"
    assert rows(db) == before


def test_editing_a_draft_changes_it_in_place(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.draft_petition(db, rt, creator)
    sign_in_as(browser, db, creator)

    response = browser.post(f"/petitions/{petition.id}/edit", full_form(title="A better title", category="pay"))

    assert response.status_code == 303
    fresh = reload(db, petition)
    assert (fresh.title, fresh.version, fresh.state) == ("A better title", 0, "draft")
    assert count_rows(db, "petition_versions") == 0


# -- sponsors ---------------------------------------------------------------------------------------------------


def test_submitting_a_draft_fixes_its_text_as_version_one(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_three_colleagues_sponsor_through_the_link_and_the_petition_goes_to_moderation(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_the_sponsor_page_shows_no_button_to_an_organizer(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.petition_gathering_sponsors(db, rt, creator)
    sign_in_as(browser, db, creator)

    page = browser.get(service.sponsor_url(rt=rt, petition=petition))

    assert page.status_code == 200 and "You organize this petition" in page.text
    assert "Sponsor this petition</button>" not in page.text


def test_an_organizer_cannot_sponsor_their_own_petition(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.petition_gathering_sponsors(db, rt, creator)
    sign_in_as(browser, db, creator)
    before = rows(db)

    response = browser.post(service.sponsor_url(rt=rt, petition=petition))

    assert response.status_code == 409 and "You organize this petition" in response.text
    assert rows(db) == before and reload(db, petition).sponsor_count == 0


def test_sponsoring_twice_is_refused_and_counted_once(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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
def test_a_bad_sponsor_token_is_not_found(browser: Browser, db, rt, token: str) -> None:  # type: ignore[no-untyped-def]
    petition = factories.petition_gathering_sponsors(db, rt)
    sign_in_as(browser, db, factories.worker(db))
    before = rows(db)

    assert browser.get(f"/petitions/{petition.id}/sponsor/{token}").status_code == 404
    response = browser.post(f"/petitions/{petition.id}/sponsor/{token}")

    assert response.status_code == 404 and "This sponsor link is not valid." in response.text
    assert rows(db) == before


def test_the_right_token_with_extra_characters_is_not_found(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    petition = factories.petition_gathering_sponsors(db, rt)
    sign_in_as(browser, db, factories.worker(db))

    response = browser.post(service.sponsor_url(rt=rt, petition=petition) + "extra")

    assert response.status_code == 404 and reload(db, petition).sponsor_count == 0


def test_a_sponsor_token_with_non_ascii_characters_is_not_found(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    petition = factories.petition_gathering_sponsors(db, rt)
    sign_in_as(browser, db, factories.worker(db))

    assert browser.get(f"/petitions/{petition.id}/sponsor/caf%C3%A9").status_code == 404


def test_a_token_of_another_petition_is_not_found(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    petition = factories.petition_gathering_sponsors(db, rt)
    other = factories.petition_gathering_sponsors(db, rt, title="Another one")
    sign_in_as(browser, db, factories.worker(db))
    other_token = service.sponsor_token(rt=rt, petition=other)

    assert browser.post(f"/petitions/{petition.id}/sponsor/{other_token}").status_code == 404


def test_without_required_sponsors_a_submitted_draft_goes_straight_to_moderation(site, db) -> None:  # type: ignore[no-untyped-def]
    configured = site(sponsors_required=0)
    creator = factories.worker(db)
    petition = factories.draft_petition(db, configured.rt, creator)
    browser = configured.browser(db, creator)

    assert browser.post(f"/petitions/{petition.id}/submit").status_code == 303

    fresh = reload(db, petition)
    assert (fresh.state, fresh.version, fresh.sponsor_count) == ("in_moderation", 1, 0)
    assert event_kinds(db, petition)[-2:] == ["sent_to_sponsors", "sent_to_moderation"]
    assert [message.template for message in outbox(db, creator.email)] == ["petition_in_moderation"]


def test_without_moderation_the_last_sponsor_opens_the_petition(site, db) -> None:  # type: ignore[no-untyped-def]
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


def test_without_moderation_or_sponsors_submitting_opens_the_petition(site, db) -> None:  # type: ignore[no-untyped-def]
    configured = site(moderation_enabled=False, sponsors_required=0)
    creator = factories.worker(db)
    petition = factories.draft_petition(db, configured.rt, creator)

    assert configured.browser(db, creator).post(f"/petitions/{petition.id}/submit").status_code == 303

    assert reload(db, petition).state == "open"
    assert event_kinds(db, petition)[-2:] == ["sent_to_sponsors", "opened"]


# -- moderation -------------------------------------------------------------------------------------------------


def test_a_moderator_claims_the_review_lock(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_the_moderation_pages_refuse_a_second_moderator_naming_the_first(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_after_the_lock_expires_a_second_moderator_can_decide(new_browser, db, rt, clock) -> None:  # type: ignore[no-untyped-def]
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


def test_a_released_lock_lets_another_moderator_claim_it(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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
def test_a_rejection_needs_a_reason_from_the_list(browser: Browser, db, rt, body: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    petition = factories.petition_in_moderation(db, rt)
    sign_in_as(browser, db, moderator_named(db, "Rita Reviewer"))
    before = rows(db)

    response = browser.api("POST", f"/api/v1/moderation/petitions/{petition.id}/reject", body)

    assert response.status_code == 422 and "reason" in response.json()["error"]["fields"]
    assert reload(db, petition).state == "in_moderation"
    assert rows(db) == before


def test_the_reject_page_without_a_reason_writes_nothing_and_says_why(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    petition = factories.petition_in_moderation(db, rt)
    sign_in_as(browser, db, moderator_named(db, "Rita Reviewer"))
    before = rows(db)

    response = browser.post(f"/moderation/petitions/{petition.id}/reject", {"reason": "", "note": "no"})

    assert response.status_code == 303
    assert "Choose a reason from the list." in browser.get(response.headers["location"]).text
    assert reload(db, petition).state == "in_moderation" and rows(db) == before


def test_a_public_rejection_reason_shows_on_the_petition_page(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_a_rejection_for_a_withheld_reason_hides_the_petition_from_the_public(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_hiding_records_the_reason_for_the_organizers_and_hides_the_petition(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_hiding_needs_a_reason(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    petition = factories.open_petition(db, rt)
    sign_in_as(browser, db, moderator_named(db, "Rita Reviewer"))
    before = rows(db)

    response = browser.api("POST", f"/api/v1/moderation/petitions/{petition.id}/hide", {"reason": "   "})

    assert response.status_code == 422 and "hidden_reason" in response.json()["error"]["fields"]
    assert reload(db, petition).state == "open" and rows(db) == before


def test_restoring_a_hidden_petition_makes_it_public_again(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_restoring_a_hidden_closed_petition_keeps_it_closed(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    petition = factories.closed_petition(db, rt)
    closed_at = petition.closed_at
    moderator = visitor(new_browser, db, moderator_named(db, "Rita Reviewer"))
    moderator.post(f"/moderation/petitions/{petition.id}/hide", {"hidden_reason": "Checking a complaint."})

    assert moderator.post(f"/moderation/petitions/{petition.id}/restore").status_code == 303

    fresh = reload(db, petition)
    assert (fresh.state, fresh.closed_at) == ("closed", closed_at)


def test_restoring_a_petition_hidden_in_moderation_opens_it_and_clears_the_reason(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    petition = factories.petition_in_moderation(db, rt)
    moderator = visitor(new_browser, db, moderator_named(db, "Rita Reviewer"))
    moderator.post(f"/moderation/petitions/{petition.id}/hide", {"hidden_reason": "Checking a complaint."})

    assert moderator.post(f"/moderation/petitions/{petition.id}/restore").status_code == 303

    fresh = reload(db, petition)
    assert fresh.state == "open"
    assert fresh.hidden_reason is None


def test_every_moderation_decision_through_the_api_answers_with_the_petition(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_the_moderation_page_shows_who_decided_what(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_the_moderation_queue_lists_waiting_petitions_oldest_first(browser: Browser, db, rt, clock) -> None:  # type: ignore[no-untyped-def]
    first = factories.petition_in_moderation(db, rt, title="Waiting longest")
    clock.advance(timedelta(hours=1))
    second = factories.petition_in_moderation(db, rt, title="Waiting shortest")
    factories.open_petition(db, rt, title="Already open")
    sign_in_as(browser, db, moderator_named(db, "Rita Reviewer"))

    queue = browser.api("GET", "/api/v1/moderation/queue").json()

    assert [item["id"] for item in queue] == [first.id, second.id]
    table = browser.get("/moderation").text.split("Recent decisions")[0]
    assert table.index("Waiting longest") < table.index("Waiting shortest") and "Already open" not in table


# -- frozen text and corrections --------------------------------------------------------------------------------


def test_correcting_a_signed_petition_creates_a_new_version_and_tells_signers(new_browser, db, rt, connection) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator, background="Recording every keystroke is intrusive.")
    signer = factories.worker(db, name="Sigrid Signer")
    signing = visitor(new_browser, db, signer).post(f"/petitions/{petition.id}/sign", {"visibility": "public"})
    assert signing.status_code == 303 and reload(db, petition).signature_count == 1
    organizer = visitor(new_browser, db, creator)

    response = organizer.post(
        f"/petitions/{petition.id}/correct",
        {
            "title": petition.title,
            "ask": petition.ask,
            "background": "Recording every keystroke is unlawful.",
            "decision_maker": petition.decision_maker or "",
            "note": "We checked the law.",
        },
    )

    assert response.status_code == 303 and response.headers["location"] == f"/petitions/{petition.id}/versions"
    fresh = reload(db, petition)
    assert (fresh.version, fresh.background) == (2, "Recording every keystroke is unlawful.")
    versions = db.scalars(
        select(PetitionVersion).where(PetitionVersion.petition_id == petition.id).order_by(PetitionVersion.number)
    ).all()
    assert [(v.number, v.background, v.note) for v in versions] == [
        (1, "Recording every keystroke is intrusive.", None),
        (2, "Recording every keystroke is unlawful.", "We checked the law."),
    ]
    assert versions[0].content_hash != versions[1].content_hash
    history = visitor(new_browser, db).get(f"/petitions/{petition.id}/versions")
    assert history.status_code == 200
    assert "<del>intrusive.</del><ins>unlawful.</ins>" in history.text
    assert "Recording every keystroke is intrusive." in history.text  # version 1 stays readable in full
    assert "What changed:</strong> We checked the law." in history.text
    assert outbox(db, signer.email) == [], "told by the worker, not in the organizer's request"
    assert fan_out(connection, rt) == 1
    mail = outbox(db, signer.email)
    assert [message.subject for message in mail] == ["A petition you signed or follow was corrected"]
    assert "now version 2" in mail[0].body_text and "We checked the law." in mail[0].body_text
    assert "new_version" in [
        item["kind"] for item in visitor(new_browser, db).api("GET", f"/api/v1/petitions/{petition.id}/timeline").json()
    ]


def test_a_correction_tells_signers_who_hid_their_name_but_not_anonymous_ones(db, rt, connection) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    named = sign(db, rt, petition, visibility="organizers")
    follower = factories.worker(db)
    service.follow(db=db, rt=rt, petition=petition, user=follower)
    db.commit()

    service.correct_text(
        db=db,
        rt=rt,
        petition=petition,
        actor=creator,
        form=PetitionCorrection(
            title=petition.title,
            ask=petition.ask + " Now.",
            background=petition.background,
            decision_maker=petition.decision_maker,
            note="Sharper ask.",
        ),
    )
    db.commit()
    assert fan_out(connection, rt) == 2

    told = {message.to_address for message in outbox(db) if message.template == "petition_corrected"}
    assert told == {named.email, follower.email}


def test_a_correction_that_changes_nothing_is_refused(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    sign(db, rt, petition)
    sign_in_as(browser, db, creator)
    before = rows(db)

    response = browser.post(
        f"/petitions/{petition.id}/correct",
        {
            "title": petition.title,
            "ask": petition.ask,
            "background": petition.background,
            "decision_maker": petition.decision_maker or "",
            "note": "Nothing really.",
        },
    )

    assert response.status_code == 422 and "Change the text, or cancel." in response.text
    assert reload(db, petition).version == 1
    assert rows(db) == before


def test_a_correction_needs_a_note(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    sign_in_as(browser, db, creator)
    before = rows(db)

    response = browser.post(
        f"/petitions/{petition.id}/correct",
        {"title": "Changed", "ask": petition.ask, "background": petition.background, "note": ""},
    )

    assert response.status_code == 422 and 'id="note-error">This is required.' in response.text
    assert rows(db) == before


def test_only_an_open_petition_can_be_corrected(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.closed_petition(db, rt, creator)
    sign_in_as(browser, db, creator)

    response = browser.api(
        "POST",
        f"/api/v1/petitions/{petition.id}/corrections",
        {"title": "Changed", "ask": petition.ask, "background": petition.background, "note": "Late fix."},
    )

    assert response.status_code == 409 and reload(db, petition).version == 1


# -- thresholds -------------------------------------------------------------------------------------------------


def test_crossing_the_response_threshold_starts_the_response_clock_exactly_once(new_browser, db, rt, clock) -> None:  # type: ignore[no-untyped-def]
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


def test_a_withdrawal_and_a_new_signature_do_not_fire_the_threshold_again(db, rt, clock) -> None:  # type: ignore[no-untyped-def]
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


def test_a_petition_below_the_threshold_shows_how_many_more_are_needed(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    petition = factories.open_petition(db, rt)
    sign(db, rt, petition)

    page = squash(re.sub(r"<[^>]+>", "", browser.get(f"/petitions/{petition.id}").text))  # the words, not tags

    assert "99 more to reach 100, when leadership must respond" in page
    assert reload(db, petition).response_threshold_reached_at is None


# -- deadlines --------------------------------------------------------------------------------------------------


def test_an_open_petition_past_its_deadline_is_closed_when_its_page_is_read(browser: Browser, db, rt, clock) -> None:  # type: ignore[no-untyped-def]
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


def test_a_refused_comment_on_a_petition_past_its_deadline_still_closes_it(browser: Browser, db, rt, clock) -> None:  # type: ignore[no-untyped-def]
    # The closing is the read's own work (ReadablePetition), not the refused comment's: the refusal rolls back what
    # the comment wrote, and used to take the closing with it, leaving the petition open in the database.
    petition = factories.open_petition(db, rt, deadline=date(2026, 11, 25))
    sign_in_as(browser, db, factories.worker(db))
    clock.advance(timedelta(days=3))

    response = browser.post(f"/petitions/{petition.id}/comments", {"body": "Is it too late to say this?"})

    assert response.status_code == 409 and "read-only" in response.text
    assert reload(db, petition).state == "closed"
    assert event_kinds(db, petition).count("closed") == 1


def test_the_api_read_closes_an_expired_petition_too(browser: Browser, db, rt, clock) -> None:  # type: ignore[no-untyped-def]
    petition = factories.open_petition(db, rt, deadline=date(2026, 11, 25))
    clock.advance(timedelta(days=3))

    response = browser.api("GET", f"/api/v1/petitions/{petition.id}")

    assert response.json()["state"] == "closed" and reload(db, petition).state == "closed"


def test_signing_an_expired_petition_is_refused(browser: Browser, db, rt, clock) -> None:  # type: ignore[no-untyped-def]
    petition = factories.open_petition(db, rt, deadline=date(2026, 11, 25))
    sign_in_as(browser, db, factories.worker(db))
    clock.advance(timedelta(days=3))

    response = browser.post(f"/petitions/{petition.id}/sign", {"visibility": "public"})

    assert response.status_code == 409 and "closed" in response.text
    assert count_rows(db, "signatures") == 0


def test_the_periodic_job_closes_every_expired_petition(db, rt, clock) -> None:  # type: ignore[no-untyped-def]
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


def test_an_expired_petition_is_not_listed_as_open_before_the_job_runs(browser: Browser, db, rt, clock) -> None:  # type: ignore[no-untyped-def]
    petition = factories.open_petition(db, rt, deadline=date(2026, 11, 25))
    clock.advance(timedelta(days=3))

    listed = listed_ids(browser.get("/petitions?state=open").text)
    api = [item["state"] for item in browser.api("GET", "/api/v1/petitions?state=all").json()["items"]]

    assert petition.id not in listed
    assert api == ["closed"]


# -- discovery --------------------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(db, rt, clock) -> dict[str, Petition]:  # type: ignore[no-untyped-def]
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


def test_search_finds_a_corrected_text_and_forgets_the_old_one(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


def test_the_page_lists_twenty_petitions_and_links_to_the_next_page(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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


# -- organizers -------------------------------------------------------------------------------------------------


def test_the_creator_adds_a_co_organizer_who_can_then_post_updates(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db, name="Casey Creator")
    colleague = factories.worker(db, name="Cory Coorganizer")
    petition = factories.open_petition(db, rt, creator)

    response = visitor(new_browser, db, creator).post(
        f"/petitions/{petition.id}/organizers", {"email": colleague.email.upper()}
    )

    assert response.status_code == 303
    [invitation] = outbox(db, colleague.email)
    assert invitation.template == "organizer_invited"
    co = visitor(new_browser, db, colleague)
    accept = re.search(r"http://testserver(/\S+/organizers/invitations/\S+)", invitation.body_text).group(1)
    assert "Accept and organize" in co.get(accept).text
    assert co.post(accept).status_code == 303
    assert (
        db.scalar(
            select(PetitionOrganizer.is_creator).where(
                PetitionOrganizer.petition_id == petition.id, PetitionOrganizer.user_id == colleague.id
            )
        )
        is False
    )
    posted = co.post(f"/petitions/{petition.id}/updates", {"title": "We reached HR", "body": "They will reply."})
    assert posted.status_code == 303
    update = db.scalar(select(PetitionUpdate).where(PetitionUpdate.petition_id == petition.id))
    assert update is not None and (update.author_id, update.title) == (colleague.id, "We reached HR")
    assert "We reached HR" in visitor(new_browser, db).get(f"/petitions/{petition.id}").text


def test_only_the_creator_adds_organizers(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator, colleague, third = factories.worker(db), factories.worker(db), factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    service.add_organizer(db=db, rt=rt, petition=petition, actor=creator, raw_email=colleague.email)
    db.commit()
    before = rows(db)

    response = visitor(new_browser, db, colleague).api(
        "POST", f"/api/v1/petitions/{petition.id}/organizers", {"email": third.email}
    )

    assert response.status_code == 403 and rows(db) == before


def test_organizers_can_send_at_most_three_updates_a_week(new_browser, db, rt, clock) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    organizer = visitor(new_browser, db, creator)
    for number in range(3):
        response = organizer.api(
            "POST", f"/api/v1/petitions/{petition.id}/updates", {"title": f"Update {number}", "body": "News."}
        )
        assert response.status_code == 201
        clock.advance(timedelta(days=1))
    before = rows(db)

    fourth = organizer.api("POST", f"/api/v1/petitions/{petition.id}/updates", {"title": "Update 4", "body": "News."})

    assert fourth.status_code == 429
    assert fourth.json()["error"]["message"] == (
        "Organizers can send at most 3 updates a week, so signers keep reading them. "
        "The next one can go out on 01 December at 09:00 UTC."
    )
    assert rows(db) == before
    clock.advance(timedelta(days=4))  # a week after the first
    again = organizer.api("POST", f"/api/v1/petitions/{petition.id}/updates", {"title": "Update 4", "body": "News."})
    assert again.status_code == 201


def test_the_update_form_refuses_a_fourth_update_in_a_week_with_429(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
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
    before = rows(db)

    fourth = browser.post(f"/petitions/{petition.id}/updates", {"title": "Update 4", "body": "News."})

    assert rows(db) == before
    assert fourth.status_code == 429 and "at most 3 updates a week" in fourth.text


def test_an_update_goes_to_followers_and_to_signers_who_asked_for_updates(new_browser, db, rt, connection) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    opted_in = sign(db, rt, petition, notify_updates=True)
    opted_in_privately = sign(db, rt, petition, notify_updates=True, visibility="organizers")
    not_opted_in = sign(db, rt, petition, notify_updates=False)
    follower = factories.worker(db)
    assert visitor(new_browser, db, follower).post(f"/petitions/{petition.id}/follow").status_code == 303
    following_signer = sign(db, rt, petition, notify_updates=True)
    service.follow(db=db, rt=rt, petition=petition, user=following_signer)
    db.commit()

    response = visitor(new_browser, db, creator).post(
        f"/petitions/{petition.id}/updates", {"title": "Meeting on Monday", "body": "HR agreed to meet."}
    )

    assert response.status_code == 303
    assert fan_out(connection, rt) == 4, "four recipients, queued two at a time by the worker"
    assert fan_out(connection, rt) == 0, "each once"
    told = [message.to_address for message in outbox(db) if message.template == "petition_update"]
    assert sorted(told) == sorted([opted_in.email, opted_in_privately.email, follower.email, following_signer.email])
    assert not_opted_in.email not in told
    message = outbox(db, follower.email)[-1]
    assert message.subject == f'Update on "{petition.title}": Meeting on Monday'
    assert "HR agreed to meet." in message.body_text


def test_an_update_cannot_be_posted_before_the_petition_opens(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator = factories.worker(db)
    petition = factories.petition_gathering_sponsors(db, rt, creator)
    sign_in_as(browser, db, creator)

    response = browser.api("POST", f"/api/v1/petitions/{petition.id}/updates", {"title": "Hi", "body": "Early."})

    assert response.status_code == 409 and count_rows(db, "petition_updates") == 0


def test_a_co_organizer_cannot_remove_another_organizer_but_can_remove_themself(new_browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator, first, second = factories.worker(db), factories.worker(db), factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    for colleague in (first, second):
        service.add_organizer(db=db, rt=rt, petition=petition, actor=creator, raw_email=colleague.email)
    db.commit()
    co = visitor(new_browser, db, first)

    assert co.post(f"/petitions/{petition.id}/organizers/{second.id}/remove").status_code == 403
    assert co.post(f"/petitions/{petition.id}/organizers/{creator.id}/remove").status_code == 403
    assert co.api("DELETE", f"/api/v1/petitions/{petition.id}/organizers/{second.id}").status_code == 403
    assert count_rows(db, "petition_organizers") == 3

    assert co.post(f"/petitions/{petition.id}/organizers/{first.id}/remove").status_code == 303
    remaining = set(db.scalars(select(PetitionOrganizer.user_id).where(PetitionOrganizer.petition_id == petition.id)))
    assert remaining == {creator.id, second.id}
    assert co.post(f"/petitions/{petition.id}/updates", {"title": "Hi", "body": "Still here?"}).status_code == 403


def test_the_creator_removes_a_co_organizer_but_not_themself(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    creator, colleague = factories.worker(db), factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    service.add_organizer(db=db, rt=rt, petition=petition, actor=creator, raw_email=colleague.email)
    db.commit()
    sign_in_as(browser, db, creator)

    assert browser.api("DELETE", f"/api/v1/petitions/{petition.id}/organizers/{creator.id}").status_code == 409
    assert browser.api("DELETE", f"/api/v1/petitions/{petition.id}/organizers/{colleague.id}").status_code == 204
    assert browser.api("DELETE", f"/api/v1/petitions/{petition.id}/organizers/{colleague.id}").status_code == 404
    assert count_rows(db, "petition_organizers") == 1


# -- following --------------------------------------------------------------------------------------------------


def test_following_twice_keeps_one_follow_and_unfollowing_removes_it(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    petition = factories.open_petition(db, rt)
    user = factories.worker(db)
    sign_in_as(browser, db, user)

    first = browser.post(f"/petitions/{petition.id}/follow")
    second = browser.post(f"/petitions/{petition.id}/follow")

    assert first.status_code == second.status_code == 303
    assert count_rows(db, "petition_follows") == 1
    page = browser.get(f"/petitions/{petition.id}").text
    assert "You already follow this petition." in page and "Stop following" in page
    for _ in range(2):
        assert browser.post(f"/petitions/{petition.id}/unfollow").status_code == 303
    assert count_rows(db, "petition_follows") == 0
    assert "Follow this petition" in browser.get(f"/petitions/{petition.id}").text


def test_following_through_the_api_is_idempotent(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    petition = factories.open_petition(db, rt)
    user = factories.worker(db)
    sign_in_as(browser, db, user)

    assert [browser.api("PUT", f"/api/v1/petitions/{petition.id}/follow").status_code for _ in range(2)] == [204, 204]
    assert db.scalars(select(Follow.user_id).where(Follow.petition_id == petition.id)).all() == [user.id]
    assert [browser.api("DELETE", f"/api/v1/petitions/{petition.id}/follow").status_code for _ in range(2)] == [
        204,
        204,
    ]
    assert db.scalar(select(func.count()).select_from(Follow)) == 0


def test_a_petition_that_is_not_published_cannot_be_followed(browser: Browser, db, rt) -> None:  # type: ignore[no-untyped-def]
    petition = factories.petition_in_moderation(db, rt)
    sign_in_as(browser, db, factories.worker(db))

    assert browser.api("PUT", f"/api/v1/petitions/{petition.id}/follow").status_code == 404
    assert count_rows(db, "petition_follows") == 0


def test_an_update_waits_while_its_petition_is_hidden_and_a_failing_one_is_set_aside(  # type: ignore[no-untyped-def]
    db, rt, connection, monkeypatch
) -> None:
    from app.moderation import service as moderation
    from app.petitions.schemas import UpdateCreate
    from app.responses import delivery

    creator, follower, voided = factories.worker(db), factories.worker(db), factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    service.follow(db=db, rt=rt, petition=petition, user=follower)
    sign(db, rt, petition, voided, notify_updates=True)
    from app.signatures import integrity

    integrity.invalidate(
        db=db,
        rt=rt,
        petition=petition,
        moderator=factories.moderator(db),  # five accounts at least
        entries=[voided.email, *(factories.worker(db).email for _ in range(4))],
        reason="A compromised account.",
        expected=1,
    )
    service.post_update(db=db, rt=rt, petition=petition, actor=creator, form=UpdateCreate(title="News", body="More."))
    moderator = factories.moderator(db)
    moderation.hide(db=db, rt=rt, petition=petition, moderator=moderator, reason="Names a colleague.")
    db.commit()
    assert fan_out(connection, rt) == 0, "nobody hears about a hidden petition"
    moderation.restore(db=db, rt=rt, petition=petition, moderator=moderator)
    db.commit()
    assert fan_out(connection, rt) == 1
    assert [message.template for message in outbox(db, follower.email)][-1] == "petition_update"
    assert not [message for message in outbox(db, voided.email) if message.template == "petition_update"], (
        "a voided signature is no longer in the audience"
    )

    # An event that fails is set aside; the next one still goes out.
    service.post_update(db=db, rt=rt, petition=petition, actor=creator, form=UpdateCreate(title="Two", body="B."))
    service.post_update(db=db, rt=rt, petition=petition, actor=creator, form=UpdateCreate(title="Three", body="C."))
    db.commit()
    original = delivery._context
    calls = []

    def failing_once(session, notification):  # type: ignore[no-untyped-def]
        calls.append(notification.id)
        if len(calls) == 1:
            raise RuntimeError("a template bug")
        return original(session, notification)

    monkeypatch.setattr(delivery, "_context", failing_once)
    with capture_logs() as logs:
        assert fan_out(connection, rt) == 1
    assert "an announcement could not be delivered" in logs.text
    assert [message.subject for message in outbox(db, follower.email)][-1].endswith(": Three")
