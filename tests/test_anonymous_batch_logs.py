"""The attacker holds the server's logs: no line written while an anonymous batch is written carries a time finer
than the hour, whatever fails around it. A batch holds the anonymous signatures accepted since the last one (a few
minutes in production, one submission with batching off), so a line to the millisecond that only a batch with
entries writes dates those signatures finer than the hour the public log gives them."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.anonymous import service as anonymous
from app.core import versions
from app.core.runtime import Runtime
from app.log import service as signature_log
from app.models.petitions import Petition
from tests.conftest import Browser, LogCapture, dated_by_the_hour
from tests.test_anonymous import count, open_anonymous, submit, wallet

# The batching tests' fixtures: settings with batching on, the cookie-less client, the queue emptied after each test.
from tests.test_batching import anonymous_client, queue, settings, signers  # noqa: F401 (fixtures)

NewBrowser = Callable[[], Browser]
# Nothing listens there: a Redis the server cannot reach.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def _accepted(new_browser: NewBrowser, db: Session, rt: Runtime, client: TestClient) -> int:
    petition = open_anonymous(db, rt)
    for member in signers(new_browser, db, 3):
        assert submit(client, petition.id, wallet(member)[0][petition.id]).status_code == 202
    return petition.id


def _finer_than_the_hour(logs: LogCapture) -> list[str]:
    return [line for line in logs.lines if not dated_by_the_hour(json.loads(line))]


def test_a_batch_written_while_redis_is_away_logs_nothing_finer_than_the_hour(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    queue,
    sessions: sessionmaker[Session],
    anonymous_client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    server_logs: LogCapture,
) -> None:
    petition_id = _accepted(new_browser, db, rt, anonymous_client)
    # The page versions live in a Redis that does not answer (as on servers sharing one, when it is down).
    for kind in (versions.PAGE, versions.CONTENT):
        monkeypatch.setitem(versions._counters, (UNREACHABLE_REDIS, kind), versions.RedisCounters(UNREACHABLE_REDIS))
    server_logs.lines.clear()
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 3
    signature_log.flush(sessions=sessions, rt=rt)
    db.expire_all()
    assert count(db, db.get_one(Petition, petition_id)) == 3
    assert server_logs.lines, "the batch said nothing of the Redis it could not reach"
    assert _finer_than_the_hour(server_logs) == []


def test_a_log_append_that_fails_in_a_batch_is_logged_by_the_hour(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    queue,
    sessions: sessionmaker[Session],
    anonymous_client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    server_logs: LogCapture,
) -> None:
    _accepted(new_browser, db, rt, anonymous_client)
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 3

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(signature_log, "_flush_petition", broken)
    server_logs.lines.clear()
    assert signature_log.flush(sessions=sessions, rt=rt) == 0
    [failed] = server_logs.entries("error")
    assert "appending to a petition's log failed" in failed["event"]
    assert _finer_than_the_hour(server_logs) == []
