"""The ballots' JSON API (issue #25): create, read, answer without cookies, results, the log, close."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ballots import log as ballot_log
from app.core import b64url
from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.models.accounts import Role
from app.models.ballots import BallotAnswer
from tests import factories
from tests.ballot_helpers import credential, petition_ballot, pulse_ballot
from tests.conftest import Browser, LogCapture, sign_in_as

pytestmark = pytest.mark.one_database


@pytest.fixture
def anonymous_client(app: FastAPI) -> Iterator[TestClient]:
    """A client that holds no cookie, as the wallet's cookie-less requests are sent."""
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def send(client: TestClient, ballot_id: int, cred: tuple[bytes, bytes], choice: list[int]):
    body = {"message": b64url.encode(cred[0]), "signature": b64url.encode(cred[1]), "choice": choice}
    return client.post(f"/api/v1/ballots/{ballot_id}/answers", json=body)


def test_a_responder_creates_a_pulse_ballot_and_a_worker_may_not(
    browser: Browser, db: Session, rt: Runtime, new_browser
) -> None:
    body = {
        "kind": "multiple",
        "question": "Which days should the canteen open late?",
        "options": ["Monday", "Wednesday", "Friday"],
        "max_choices": 2,
        "closes_at": (rt.clock.now() + timedelta(days=3)).isoformat(),
    }
    sign_in_as(browser, db, factories.worker(db, roles=(Role.responder,)))
    created = browser.api("POST", "/api/v1/ballots", body)
    assert created.status_code == 201, created.text
    read = created.json()
    assert read["state"] == "open" and read["max_choices"] == 2 and read["audience"] == "members"
    assert [option["label"] for option in read["options"]] == body["options"]
    assert read["key"]["key_id"] and read["credentials_issued"] == 0
    assert browser.api("GET", f"/api/v1/ballots/{read['id']}").json() == read
    assert [item["id"] for item in browser.api("GET", "/api/v1/ballots").json()] == [read["id"]]

    worker = sign_in_as(new_browser(), db, factories.worker(db))
    assert worker.api("POST", "/api/v1/ballots", body).status_code == 403


def test_form_errors_name_the_fields(browser: Browser, db: Session, rt: Runtime) -> None:
    sign_in_as(browser, db, factories.worker(db, roles=(Role.admin,)))
    refused = browser.api(
        "POST",
        "/api/v1/ballots",
        {"kind": "single", "question": "", "options": ["A"], "closes_at": rt.clock.now().isoformat()},
    )
    assert refused.status_code == 422
    assert set(refused.json()["error"]["fields"]) == {"question", "options", "closes_at"}
    too_many = browser.api(
        "POST",
        "/api/v1/ballots",
        {
            "kind": "single",
            "question": "Q?",
            "options": [str(n) for n in range(100)],
            "closes_at": (rt.clock.now() + timedelta(days=1)).isoformat(),
        },
    )
    assert too_many.status_code == 422 and "at most 20" in too_many.json()["error"]["fields"]["options"]


def test_answering_without_cookies_leaves_no_log_line_and_no_cookie(
    db: Session, rt: Runtime, anonymous_client: TestClient, server_logs: LogCapture, new_browser
) -> None:
    ballot = pulse_ballot(db, rt)
    mine = credential(db, rt, ballot)
    db.commit()
    server_logs.lines.clear()
    accepted = send(anonymous_client, ballot.id, mine, [1])
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"accepted": True, "counted_at_batch": 0}
    assert "set-cookie" not in accepted.headers
    assert send(anonymous_client, ballot.id, mine, [1]).status_code == 409  # the same answer is no change
    assert send(anonymous_client, ballot.id, mine, [2]).status_code == 202  # a change is
    assert server_logs.lines == []
    new_browser().get("/healthz")
    assert server_logs.lines  # the capture works: other requests are logged
    assert [row.revision for row in db.scalars(select(BallotAnswer).where(BallotAnswer.ballot_id == ballot.id))] in (
        [1, 2],
        [2, 1],
    )


def test_bad_answers_through_the_api(
    db: Session, rt: Runtime, anonymous_client: TestClient, clock: FrozenClock
) -> None:
    ballot = pulse_ballot(db, rt, days=1)
    other = pulse_ballot(db, rt)
    mine, foreign = credential(db, rt, ballot), credential(db, rt, other)
    db.commit()
    refused = send(anonymous_client, ballot.id, foreign, [0])
    assert refused.status_code == 400 and "not valid for this poll" in refused.json()["error"]["message"]
    assert send(anonymous_client, ballot.id, mine, [7]).status_code == 400
    assert send(anonymous_client, ballot.id, mine, [0, 1]).status_code == 400
    assert send(anonymous_client, ballot.id, mine, []).status_code == 400
    bad = anonymous_client.post(
        f"/api/v1/ballots/{ballot.id}/answers", json={"message": "!!", "signature": "", "choice": [0]}
    )
    assert bad.status_code == 422
    assert send(anonymous_client, 999_999, mine, [0]).status_code == 404
    clock.advance(timedelta(days=1))
    late = send(anonymous_client, ballot.id, mine, [0])
    assert late.status_code == 409 and "closed" in late.json()["error"]["message"]
    assert db.scalar(select(BallotAnswer.id)) is None


def test_results_leaves_and_checkpoint(
    db: Session, rt: Runtime, anonymous_client: TestClient, clock: FrozenClock
) -> None:
    ballot = pulse_ballot(db, rt, days=1, min_answers=5)
    creds = [credential(db, rt, ballot) for _ in range(5)]
    db.commit()
    for cred, choice in zip(creds, ([0], [0], [1], [2], [0]), strict=True):
        assert send(anonymous_client, ballot.id, cred, choice).status_code == 202
    hidden = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/results").json()
    assert hidden["status"] == "hidden" and hidden["options"] == []
    clock.advance(timedelta(days=1))
    shown = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/results").json()
    assert shown["status"] == "shown" and shown["answers"] == 5
    assert [option["count"] for option in shown["options"]] == [3, 1, 1]
    page = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/log/leaves?start=0&end=100").json()
    assert page["size"] == 6 and [leaf["index"] for leaf in page["leaves"]] == list(range(6))
    entries = [json.loads(b64url.decode(leaf["entry"])) for leaf in page["leaves"]]
    assert entries[0]["kind"] == "ballot" and {entry["kind"] for entry in entries[1:]} == {"answer"}
    head = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/log/checkpoint").json()
    assert head["size"] == 6 and ballot_log.counters(head["checkpoint"]) == {
        "credentials_issued": 5,
        "answers_counted": 5,
    }


def test_a_hidden_petitions_ballot_is_not_shown(db: Session, rt: Runtime, anonymous_client: TestClient) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    ballot = petition_ballot(db, rt, petition, organizer)
    cred = credential(db, rt, ballot)
    assert anonymous_client.get(f"/api/v1/ballots/{ballot.id}").status_code == 200
    petition.state = "hidden"  # type: ignore[assignment]
    db.commit()
    assert anonymous_client.get(f"/api/v1/ballots/{ballot.id}").status_code == 404
    assert anonymous_client.get(f"/api/v1/ballots/{ballot.id}/log/leaves").status_code == 404
    assert send(anonymous_client, ballot.id, cred, [0]).status_code == 404  # nor does it take answers meanwhile


def test_organizers_close_their_petitions_ballot(browser: Browser, db: Session, rt: Runtime, new_browser) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    ballot = petition_ballot(db, rt, petition, organizer)
    stranger = sign_in_as(new_browser(), db, factories.worker(db))
    assert stranger.api("POST", f"/api/v1/ballots/{ballot.id}/close").status_code == 403
    sign_in_as(browser, db, organizer)
    closed = browser.api("POST", f"/api/v1/ballots/{ballot.id}/close")
    assert closed.status_code == 200 and closed.json()["state"] == "closed" and closed.json()["closed_early"]
    assert browser.api("POST", f"/api/v1/ballots/{ballot.id}/close").status_code == 409


def test_the_log_keeps_the_answers_while_the_result_is_kept(
    db: Session, rt: Runtime, anonymous_client: TestClient, clock: FrozenClock
) -> None:
    """The attack: a result hidden until the close, or below the minimum, is read by counting the log's answers."""
    ballot = pulse_ballot(db, rt, days=1, min_answers=5)
    creds = [credential(db, rt, ballot) for _ in range(5)]
    db.commit()
    leaves_url = f"/api/v1/ballots/{ballot.id}/log/leaves?start=0&end=100"

    def counted_from_the_log() -> list[list[int]]:
        page = anonymous_client.get(leaves_url).json()
        entries = [json.loads(b64url.decode(leaf["entry"])) for leaf in page["leaves"]]
        return [entry["choice"] for entry in entries if entry["kind"] == "answer"]

    for cred in creds[:4]:
        send(anonymous_client, ballot.id, cred, [0])
    assert counted_from_the_log() == []  # open, result kept
    page = anonymous_client.get(leaves_url).json()
    assert page["size"] == 5 and page["published"] == 1 and len(page["leaves"]) == 1  # entry 0: the key
    clock.advance(timedelta(days=1))
    assert counted_from_the_log() == []  # closed, but 4 answers are fewer than the minimum of 5
    assert anonymous_client.get(f"/api/v1/ballots/{ballot.id}/results").json()["status"] == "not_enough"


def test_a_live_ballots_log_shows_its_answers_once_there_are_enough(
    db: Session, rt: Runtime, anonymous_client: TestClient
) -> None:
    ballot = pulse_ballot(db, rt, results_live=True, min_answers=5)
    creds = [credential(db, rt, ballot) for _ in range(5)]
    db.commit()
    for cred in creds:
        send(anonymous_client, ballot.id, cred, [1])
    page = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/log/leaves").json()
    assert page["published"] == page["size"] == 6 and len(page["leaves"]) == 6
