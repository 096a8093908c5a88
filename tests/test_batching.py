"""Batches of at least k: a petition's anonymous signatures are published once k are waiting, or after the maximum
delay, or when it closes; a smaller batch that had to go out is noted publicly on its timeline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.anonymous import batching
from app.anonymous import service as anonymous
from app.anonymous.batching import Reason
from app.anonymous.queue import anonymous_queue
from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.petitions import Petition, PetitionEvent
from app.petitions import service as petitions
from tests import factories
from tests.conftest import Browser, LogCapture, dated_by_the_hour, make_settings, sign_in_as
from tests.test_anonymous import count, open_anonymous, submit, wallet

NewBrowser = Callable[[], Browser]
BATCHING = {"anonymous_batch_seconds": 300, "min_group_size": 3, "anonymous_max_delay_seconds": 7200}


# -- the rule ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "hours", "closing", "expected"),
    [
        (0, 99, True, None),  # nothing to publish
        (3, 0, False, Reason.full),
        (7, 0, True, Reason.full),  # enough: no note needed even at closing
        (2, 0, False, None),
        (2, 1, False, None),
        (2, 2, False, Reason.max_delay),
        (1, 5, False, Reason.max_delay),
        (1, 0, True, Reason.closing),
    ],
)
def test_the_rule(count: int, hours: int, closing: bool, expected: Reason | None) -> None:
    assert (
        batching.publish_reason(
            count=count, hours_waited=hours, closing=closing, min_group_size=3, max_delay_seconds=7200
        )
        is expected
    )


def test_the_maximum_delay_is_whole_hours() -> None:
    assert batching.max_delay_hours(7200) == 2
    assert batching.max_delay_hours(5400) == 2  # rounded up: never published before the delay
    assert batching.max_delay_hours(300) == 1
    assert batching.hours_between(10, 12) == 2 and batching.hours_between(12, 10) == 0


def test_the_maximum_delay_cannot_be_shorter_than_a_batch(database_url: str) -> None:
    with pytest.raises(ValueError, match="MAX_DELAY"):
        make_settings(database_url, anonymous_batch_seconds=600, anonymous_max_delay_seconds=300)


# -- through the app --------------------------------------------------------------------------------------------


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    return make_settings(database_url, **{**BATCHING, **getattr(request, "param", {})})


@pytest.fixture
def anonymous_client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def queue(rt: Runtime, anonymous_client: TestClient):
    """The app's queue, emptied before the app shuts down (which would write what is left outside the test's
    transaction) and before the next test shares the app."""
    yield anonymous_queue(rt)
    for entry in anonymous_queue(rt).take():
        anonymous_queue(rt).release(entry.petition_id)


def signers(new_browser: NewBrowser, db: Session, how_many: int) -> list[Browser]:
    return [sign_in_as(new_browser(), db, factories.worker(db)) for _ in range(how_many)]


def small_batch_notes(db: Session, petition: Petition) -> list[PetitionEvent]:
    db.expire_all()
    return list(
        db.scalars(
            select(PetitionEvent).where(
                PetitionEvent.petition_id == petition.id, PetitionEvent.kind == anonymous.SMALL_BATCH_EVENT
            )
        )
    )


def test_a_group_waits_until_it_holds_k(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    queue,
    sessions: sessionmaker[Session],
    anonymous_client: TestClient,
) -> None:
    petition = open_anonymous(db, rt)
    tokens = [wallet(member)[0][petition.id] for member in signers(new_browser, db, 3)]
    for token in tokens[:2]:
        assert submit(anonymous_client, petition.id, token).status_code == 202
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 0
    assert len(queue) == 2 and count(db, petition) == 0
    # Held back, still a spent token: sending it again is refused.
    assert submit(anonymous_client, petition.id, tokens[0]).status_code == 409
    assert submit(anonymous_client, petition.id, tokens[2]).status_code == 202
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 3
    assert count(db, petition) == 3 and len(queue) == 0
    assert small_batch_notes(db, petition) == []


def test_a_failed_batch_keeps_its_signatures_and_says_so_by_the_hour(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    queue,
    sessions: sessionmaker[Session],
    anonymous_client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    server_logs: LogCapture,
) -> None:
    petition = open_anonymous(db, rt)
    for member in signers(new_browser, db, 3):
        assert submit(anonymous_client, petition.id, wallet(member)[0][petition.id]).status_code == 202

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(anonymous, "_write_group", broken)
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 0
    assert len(queue) == 3 and count(db, petition) == 0
    # The line says when the batch failed by the hour only: with batching off, a batch is one signature's moment.
    [failed] = server_logs.entries("error")
    assert "anonymous signatures failed" in failed["event"] and dated_by_the_hour(failed), failed
    monkeypatch.undo()
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 3


def test_a_small_group_goes_out_after_the_maximum_delay_with_a_public_note(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    queue,
    sessions: sessionmaker[Session],
    anonymous_client: TestClient,
) -> None:
    petition = open_anonymous(db, rt)
    [token] = [wallet(member)[0][petition.id] for member in signers(new_browser, db, 1)]
    assert submit(anonymous_client, petition.id, token).status_code == 202
    clock.advance(timedelta(minutes=25))
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 0
    clock.advance(timedelta(hours=1))
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 0  # one whole hour waited of two
    clock.advance(timedelta(hours=1))
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 1
    assert count(db, petition) == 1
    [note] = small_batch_notes(db, petition)
    assert note.public and note.at == clock.now().replace(minute=0, second=0, microsecond=0)
    assert note.detail == (
        "1 anonymous signature was published in a batch smaller than 3, because they had "
        "waited the maximum delay (2 hours)"
    )
    page = new_browser().get(f"/petitions/{petition.id}").text
    assert "Anonymous signatures published in a small batch" in page and "smaller than 3" in page


def test_a_small_group_goes_out_when_the_petition_closes(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    queue,
    sessions: sessionmaker[Session],
    anonymous_client: TestClient,
) -> None:
    petition = open_anonymous(db, rt)
    tokens = [wallet(member)[0][petition.id] for member in signers(new_browser, db, 2)]
    for token in tokens:
        assert submit(anonymous_client, petition.id, token).status_code == 202
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 0
    petitions.close(db=db, rt=rt, petition=db.get_one(Petition, petition.id), actor=None, reason="deadline")
    db.commit()
    # Accepted while it was open: they count after the close.
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 2
    assert count(db, petition) == 2
    [note] = small_batch_notes(db, petition)
    assert note.detail == (
        "2 anonymous signatures were published in a batch smaller than 3, because the petition was closing"
    )


def test_each_petition_is_judged_on_its_own_group(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    queue,
    sessions: sessionmaker[Session],
    anonymous_client: TestClient,
) -> None:
    busy, quiet = open_anonymous(db, rt), open_anonymous(db, rt, title="Quiet")
    members = signers(new_browser, db, 3)
    wallets = [wallet(member)[0] for member in members]
    for tokens in wallets:
        assert submit(anonymous_client, busy.id, tokens[busy.id]).status_code == 202
    assert submit(anonymous_client, quiet.id, wallets[0][quiet.id]).status_code == 202
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 3
    assert (count(db, busy), count(db, quiet)) == (3, 0) and len(queue) == 1


@pytest.mark.parametrize("settings", [{"anonymous_batch_seconds": 0, "anonymous_max_delay_seconds": 0}], indirect=True)
def test_with_batching_off_a_signature_is_counted_at_once(
    new_browser: NewBrowser, db: Session, rt: Runtime, queue, anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    [token] = [wallet(member)[0][petition.id] for member in signers(new_browser, db, 1)]
    assert submit(anonymous_client, petition.id, token).status_code == 202
    assert count(db, petition) == 1 and len(queue) == 0
    assert small_batch_notes(db, petition) == []
