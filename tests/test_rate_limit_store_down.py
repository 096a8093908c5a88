"""Redis down: every rate-limited action is refused in plain words (503), never a 500, and nothing is written.

A deployment of several processes keeps its rate limits in Redis. When Redis cannot be reached, the limits cannot
be counted; going on without them would open sign-in codes and passwords to guessing for as long as the outage
lasts, so the action is refused, with Retry-After, as linking a device already was (app/routes/anonymous_link_api.py).
"""

from __future__ import annotations

import socket

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.ratelimit import RateLimiter
from app.models.signatures import Signature
from tests import factories
from tests.conftest import Browser, build_test_app, count_rows, make_settings, make_user, outbox, sign_in_as

pytestmark = pytest.mark.one_database


def closed_port() -> int:
    """A port nothing listens on: Redis down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_down_app(database_url: str, connection, clock, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    settings = make_settings(database_url, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    # The harness empties the limiter's store before each test (`forget_earlier_requests`): there is none here.
    monkeypatch.setattr(RateLimiter, "reset", lambda _self: None)
    return build_test_app(settings, connection, clock)


def refused_in_words(response) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.headers.get("retry-after"), response.headers
    assert "Traceback" not in response.text and "ConnectionError" not in response.text
    assert "limits" in response.text and "minute" in response.text, response.text[:500]


def test_a_sign_in_code_request_is_refused_in_words_and_no_mail_is_queued(redis_down_app: FastAPI, db: Session) -> None:
    make_user(db, email="ana@example.org")
    db.commit()
    with TestClient(redis_down_app, base_url="http://testserver", follow_redirects=False) as client:
        browser = Browser(client)
        refused_in_words(browser.post("/signin/link", {"email": "ana@example.org"}))
        refused_in_words(browser.api("POST", "/api/v1/sign-in-links", {"email": "ana@example.org"}))
    assert outbox(db) == []


def test_signing_is_refused_in_words_and_nothing_is_counted(redis_down_app: FastAPI, db: Session) -> None:
    rt = redis_down_app.state.runtime
    petition = factories.open_petition(db, rt)
    worker = factories.worker(db)
    with TestClient(redis_down_app, base_url="http://testserver", follow_redirects=False) as client:
        browser = sign_in_as(Browser(client), db, worker)
        response = browser.api("POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"})
        refused_in_words(response)
    assert count_rows(db, Signature.__tablename__) == 0
    db.refresh(petition)
    assert petition.signature_count == 0
