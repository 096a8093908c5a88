"""What the petition tests share: helpers to read rows and pages, the full draft form, a site built with other
settings (the `site` fixture), and people in roles."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.runtime import Runtime
from app.models.accounts import Role, User
from app.models.petitions import Petition, PetitionEvent
from app.signatures import service as signatures
from tests import factories
from tests.conftest import (
    Browser,
    build_test_app,
    count_rows,
    make_settings,
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
def site(database_url: str, connection: Connection, clock) -> Iterator[Callable[..., Site]]:
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
