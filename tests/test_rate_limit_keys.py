"""Rate-limit counters in Redis cannot be lined up across actions: each action hashes the account its own way.

One hash of the account for every action let whoever reads Redis join a person's comment counter with their
signing and token counters (and date each first hit by the keys' lifetimes), without holding any key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import cast

import pytest
import redis
from fastapi import FastAPI
from sqlalchemy.orm import Session

from app.core.ratelimit import RateLimiter
from app.core.security import Keyring
from app.core.settings import Settings
from tests import factories
from tests.conftest import TEST_SECRET, Browser, build_test_app, make_settings, missing, redis_url, sign_in_as

pytestmark = pytest.mark.one_database

REDIS_URL = redis_url(13)


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        missing(f"Redis is not running at {REDIS_URL} ({error})")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def components(key: bytes) -> set[str]:
    """The parts of a key as the `limits` library builds it: `LIMITS:LIMITER/<action>/<subject>/<n>/<m>/<unit>`."""
    return set(re.split(r"[:/]", key.decode()))


RULE_TEXT = {"LIMITS", "LIMITER", "minute", "hour", "day"}


def stored_keys(redis_db: redis.Redis) -> list[bytes]:
    """Every key in Redis, as the bytes it holds (the client decodes no responses)."""
    return cast(list[bytes], redis_db.keys("*"))


def assert_nothing_of_the_account_is_shared(keys: list[bytes], *, actions: set[str], account_id: int) -> None:
    """Every key names one of `actions` and one keyed hash; no part but fixed rule text is shared across actions."""
    old_shared_hash = Keyring(TEST_SECRET).keyed_hash("rate-limit", f"account:{account_id}")
    parts_by_action: dict[str, set[str]] = {}
    for key in keys:
        parts = components(key)
        (action,) = parts & actions
        # Besides the action and the rule, one part only: a keyed hash, not the account or its old shared hash.
        (subject,) = parts - actions - RULE_TEXT - {part for part in parts if part.isdigit()}
        assert re.fullmatch(r"[0-9a-f]{64}", subject) and subject != old_shared_hash, parts
        parts_by_action.setdefault(action, set()).update(parts)
    assert set(parts_by_action) == actions, keys
    first, second = parts_by_action.values()
    # What both may share is fixed text: the library's prefixes and the rules' numbers and units.
    assert all(part in RULE_TEXT or part.isdigit() for part in first & second), first & second


def test_two_actions_of_one_account_share_no_key_part(redis_db: redis.Redis) -> None:
    limiter = RateLimiter(storage_url=REDIS_URL, keyring=Keyring(TEST_SECRET))
    limiter.hit(action="comment", subject="account:7", rule="5/minute")
    limiter.hit(action="sign", subject="account:7", rule="5/minute")
    keys = stored_keys(redis_db)
    assert len(keys) == 2
    assert_nothing_of_the_account_is_shared(keys, actions={"comment", "sign"}, account_id=7)


def test_the_same_action_and_subject_still_count_together(redis_db: redis.Redis) -> None:
    from app.core.errors import RateLimited

    limiter = RateLimiter(storage_url=REDIS_URL, keyring=Keyring(TEST_SECRET))
    limiter.hit(action="sign", subject="Account:7", rule="2/minute")
    limiter.hit(action="sign", subject="account:7", rule="2/minute")  # subjects are compared in lower case
    limiter.hit(action="comment", subject="account:7", rule="2/minute")  # another action, its own counter
    with pytest.raises(RateLimited):
        limiter.hit(action="sign", subject="account:7", rule="2/minute")


@pytest.fixture
def redis_app(database_url: str, connection, clock, redis_db: redis.Redis) -> FastAPI:
    settings: Settings = make_settings(database_url, redis_url=REDIS_URL)
    return build_test_app(settings, connection, clock)


def test_signing_and_a_code_request_by_one_account_leave_unrelated_keys(
    redis_app: FastAPI, redis_db: redis.Redis, db: Session
) -> None:
    from fastapi.testclient import TestClient

    rt = redis_app.state.runtime
    petition = factories.open_petition(db, rt)
    worker = factories.worker(db)
    redis_db.flushdb()
    with TestClient(redis_app, base_url="http://testserver", follow_redirects=False) as client:
        browser = sign_in_as(Browser(client), db, worker)
        assert (
            browser.api("POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}).status_code
            == 201
        )
        assert (
            browser.post("/account/notification-email", {"notification_email": "kai@home.example"}).status_code == 303
        )
    limit_keys = [key for key in stored_keys(redis_db) if key.startswith(b"LIMITS:")]
    assert_nothing_of_the_account_is_shared(limit_keys, actions={"sign", "code-request"}, account_id=worker.id)
