"""Busy pages at scale: signed-out readers share one response for a few seconds, everyone shares the public
tally for a minute, and nothing personal is ever shared."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from itsdangerous import URLSafeSerializer
from sqlalchemy.orm import Session

from app.core.cache import TTLCache
from app.core.pagecache import SharedPageCache
from app.core.runtime import Runtime
from app.core.settings import Environment, Settings
from app.core.templating import FLASH_COOKIE
from app.signatures import service as signatures
from tests import factories
from tests.conftest import counting_statements, make_settings, sign_in_as

pytestmark = pytest.mark.one_database

SHARED_SECONDS = 5.0


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, shared_page_seconds=SHARED_SECONDS, tally_cache_seconds=60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def shared(app: FastAPI, client) -> Iterator[tuple[SharedPageCache, Clock]]:
    """The app's shared copies, emptied (the app is shared between tests, and petition ids come round again)."""
    client.get("/healthz")  # the middleware is built on the first request
    layer = app.middleware_stack
    while not isinstance(layer, SharedPageCache):
        layer = layer.app  # type: ignore[union-attr]
    clock = Clock()
    layer.clear()
    layer.clock = clock
    yield layer, clock
    layer.clear()


def sign(db: Session, rt: Runtime, petition, name: str) -> None:
    signatures.sign(
        db=db,
        rt=rt,
        petition_id=petition.id,
        user=factories.worker(db, name=name),
        visibility="public",
        notify_updates=False,
    )
    db.commit()


def count_on_page(html: str) -> str:
    return html.split('class="tally-count"><strong>', 1)[1].split("</strong>", 1)[0]


def test_signed_out_readers_share_a_copy_for_a_few_seconds(db, rt, new_browser, shared) -> None:
    _layer, clock = shared
    petition = factories.open_petition(db, rt)
    assert count_on_page(new_browser().get(f"/petitions/{petition.id}").text) == "0"
    sign(db, rt, petition, "Sam Signer")

    assert count_on_page(new_browser().get(f"/petitions/{petition.id}").text) == "0"  # the shared copy
    clock.now += SHARED_SECONDS
    assert count_on_page(new_browser().get(f"/petitions/{petition.id}").text) == "1"


def test_signed_in_readers_neither_get_nor_leave_a_shared_copy(db, rt, new_browser, shared) -> None:
    petition = factories.open_petition(db, rt)
    reader = sign_in_as(new_browser(), db, factories.worker(db, name="Rita Reader"))
    own = reader.get(f"/petitions/{petition.id}")
    assert "Sign this petition</button>" in own.text and "Rita Reader" in own.text

    anyone = new_browser().get(f"/petitions/{petition.id}")
    assert "Sign in to sign" in anyone.text and "Rita Reader" not in anyone.text
    assert "Sign this petition</button>" in reader.get(f"/petitions/{petition.id}").text


def test_every_new_reader_gets_a_cookie_of_its_own(db, rt, new_browser, shared) -> None:
    petition = factories.open_petition(db, rt)
    cookies = []
    for _ in range(3):
        response = new_browser().get(f"/petitions/{petition.id}")
        set_cookies = response.headers.get_list("set-cookie")
        assert len(set_cookies) == 1 and set_cookies[0].startswith("undersigned_csrf=")
        cookies.append(set_cookies[0])
    assert len(set(cookies)) == 3
    layer, _clock = shared
    assert all(b"set-cookie" not in name.lower() for copy in layer._copies.values() for name, _ in copy.headers)


def test_a_page_with_a_flash_message_is_the_readers_own(db, rt, app, new_browser, shared) -> None:
    petition = factories.open_petition(db, rt)
    flashed = new_browser()
    message = URLSafeSerializer(app.state.keyring.key("flash").hex(), salt="flash").dumps(
        [{"kind": "success", "message": "Your comment is posted."}]
    )
    flashed.client.cookies.set(FLASH_COOKIE, message, domain="testserver.local")
    assert "Your comment is posted." in flashed.get(f"/petitions/{petition.id}").text
    assert "Your comment is posted." not in new_browser().get(f"/petitions/{petition.id}").text


def test_only_marked_pages_that_succeeded_are_shared(db, rt, new_browser, shared) -> None:
    layer, _clock = shared
    draft = factories.draft_petition(db, rt)
    assert new_browser().get(f"/petitions/{draft.id}").status_code == 404
    new_browser().get("/petitions")  # the listing is not marked: it has a search box and page numbers
    assert list(layer._copies) == []
    petition = factories.open_petition(db, rt)
    for path in (
        f"/petitions/{petition.id}",
        f"/petitions/{petition.id}/comments",
        f"/api/v1/petitions/{petition.id}/tally",
        f"/api/v1/petitions/{petition.id}",
    ):
        assert new_browser().get(path).status_code == 200
    assert sorted(layer._copies) == sorted(
        [
            f"/petitions/{petition.id}?",
            f"/petitions/{petition.id}/comments?",
            f"/api/v1/petitions/{petition.id}/tally?",
            f"/api/v1/petitions/{petition.id}?",
        ]
    )


def test_the_public_tally_is_counted_once_a_minute_for_everyone(db, rt, connection, new_browser, shared) -> None:
    organizer = factories.worker(db, name="Olga Organizer")
    petition = factories.open_petition(db, rt, creator=organizer)
    sign(db, rt, petition, "Sam Signer")
    reader = sign_in_as(new_browser(), db, factories.worker(db, name="Rita Reader"))  # not shared: signed in
    assert reader.get(f"/api/v1/petitions/{petition.id}/tally").json()["signature_count"] == 1
    sign(db, rt, petition, "Sue Signer")

    with counting_statements(connection) as statements:
        assert reader.get(f"/api/v1/petitions/{petition.id}/tally").json()["signature_count"] == 1
    assert not [statement for statement in statements if "count(" in statement.lower()]
    organizers = sign_in_as(new_browser(), db, organizer)
    assert organizers.get(f"/api/v1/petitions/{petition.id}/tally").json()["signature_count"] == 2
    rt.cache.clear()  # as a minute later
    assert reader.get(f"/api/v1/petitions/{petition.id}/tally").json()["signature_count"] == 2


def test_sharing_is_on_in_production_and_off_elsewhere_unless_set() -> None:
    # Without validation: what else production asks for is tested in test_settings.py.
    production = Settings.model_construct(environment=Environment.production)
    assert (production.shared_page_ttl, production.tally_cache_ttl) == (5.0, 60.0)
    for environment in (Environment.test, Environment.development):
        elsewhere = Settings.model_construct(environment=environment)
        assert (elsewhere.shared_page_ttl, elsewhere.tally_cache_ttl) == (0.0, 0.0)
    assert Settings.model_construct(environment=Environment.production, shared_page_seconds=0).shared_page_ttl == 0


# -- the memo under them ----------------------------------------------------------------------------------------


def test_a_costly_value_is_loaded_once_while_many_readers_wait_or_read_the_previous_one() -> None:
    cache = TTLCache()
    loads: list[int] = []
    started, release = threading.Event(), threading.Event()

    def slow_load() -> int:
        loads.append(len(loads))
        started.set()
        release.wait(5)
        return len(loads)

    results: list[int] = []
    readers = [
        threading.Thread(target=lambda: results.append(cache.get_shared("tally", slow_load, ttl=60))) for _ in range(8)
    ]
    for thread in readers:
        thread.start()
    started.wait(5)
    time.sleep(0.05)
    release.set()
    for thread in readers:
        thread.join(5)
    assert loads == [0] and results == [1] * 8  # nothing to show yet: they waited for the one load

    started.clear()
    release.clear()
    reloading = threading.Thread(target=lambda: cache.get_shared("tally", slow_load, ttl=0))
    reloading.start()
    started.wait(5)
    assert cache.get_shared("tally", slow_load, ttl=0) == 1  # the previous value while it reloads
    release.set()
    reloading.join(5)
    assert loads == [0, 1] and cache.get_shared("tally", slow_load, ttl=60) == 2
