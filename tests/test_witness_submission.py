"""The worker asks the deployment's witnesses to cosign (issue #20): with `log_witness_urls` set, each round sends
every public petition's newest checkpoint made before the current hour to each witness over C2SP tlog-witness, once
per checkpoint, and keeps the cosignature (a witness's line is public and dated to the second: a checkpoint of this
hour waits, so the line dates no batch). The witness here is the spec-only one of tests/test_witness_protocol.py,
on 127.0.0.1. A witness that refuses or cannot be reached is logged (to the hour) and asked again the next round;
the round goes on."""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from app import jobs
from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.log import service as signature_log
from app.log import witness as witnessing
from tests import factories
from tests.conftest import Browser, build_test_app, make_settings, sign_in_as
from tests.test_witness_protocol import WITNESS_KEY, WITNESS_NAME, SpecWitness, app, spec_server, witness_vkey

pytestmark = pytest.mark.one_database

__all__ = ["app", "spec_server"]  # the fixtures, used by name below

UNREACHABLE = "http://127.0.0.1:1/nobody"  # nothing listens on port 1: the connection is refused at once


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the process remembers of earlier rounds starts empty for each test."""
    monkeypatch.setattr(witnessing, "_cosigned", {})
    monkeypatch.setattr(witnessing, "_failed", {})


def counted(witness: SpecWitness) -> list[int]:
    """Count the add-checkpoint requests the witness answers."""
    asked: list[int] = []
    answer = witness.add_checkpoint

    def add_checkpoint(body: bytes) -> tuple[int, str, bytes]:
        asked.append(1)
        return answer(body)

    witness.add_checkpoint = add_checkpoint  # type: ignore[method-assign]
    return asked


def with_urls(rt: Runtime, *urls: str) -> Runtime:
    return dataclasses.replace(rt, settings=rt.settings.model_copy(update={"log_witness_urls": list(urls)}))


def next_hour(clock: FrozenClock) -> None:
    """The worker's first round once the current hour has ended, some minutes into the next."""
    clock.advance(
        timedelta(hours=1)
        - (clock.now() - clock.now().replace(minute=0, second=0, microsecond=0))
        + timedelta(minutes=7, seconds=13)
    )


def test_the_worker_has_each_new_checkpoint_cosigned_once(
    new_browser: Callable[[], Browser],
    db: Session,
    rt: Runtime,
    sessions: sessionmaker[Session],
    spec_server,
    client,
    clock: FrozenClock,
) -> None:
    url, holder = spec_server
    petition = factories.open_petition(db, rt)
    origin = signature_log.origin(rt, petition.id)
    holder["witness"] = SpecWitness(
        WITNESS_NAME, WITNESS_KEY, [signature_log.log_verifier_key(rt, petition.id)], clock=lambda: 1796000000
    )
    asked = counted(holder["witness"])
    worker = with_urls(rt, url)

    assert jobs.run_once(sessions=sessions, rt=worker)["cosigned"] == 0 and asked == []  # made this hour: it waits
    next_hour(clock)
    assert jobs.run_once(sessions=sessions, rt=worker)["cosigned"] >= 1
    head = client.get(f"/api/v1/petitions/{petition.id}/log").json()
    assert head["witnesses"] == [WITNESS_NAME] and holder["witness"].state[origin][0] == head["size"] == 1
    before = len(asked)
    jobs.run_once(sessions=sessions, rt=worker)
    assert len(asked) == before  # the same checkpoint is not sent twice

    # Signatures, a batch, a new checkpoint: the next round sends it (the witness checks the consistency proof
    # from size 1 with its own code) and keeps the cosignature.
    for _ in range(2):
        sign_in_as(new_browser(), db, factories.worker(db)).api(
            "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}
        )
    jobs.run_once(sessions=sessions, rt=worker)
    assert len(asked) == before  # the new checkpoint is of this hour
    next_hour(clock)
    jobs.run_once(sessions=sessions, rt=worker)
    head = client.get(f"/api/v1/petitions/{petition.id}/log").json()
    assert head["size"] == 3 and head["witnesses"] == [WITNESS_NAME]
    assert holder["witness"].state[origin][0] == 3


def test_a_witness_that_refuses_or_is_unreachable_is_logged_to_the_hour_and_asked_again(
    db: Session, rt: Runtime, sessions: sessionmaker[Session], spec_server, client, server_logs, clock: FrozenClock
) -> None:
    url, holder = spec_server
    petition = factories.open_petition(db, rt)
    holder["witness"] = SpecWitness(WITNESS_NAME, WITNESS_KEY, [], clock=lambda: 1796000000)  # knows no log yet
    worker = with_urls(rt, UNREACHABLE, url)
    next_hour(clock)

    done = jobs.run_once(sessions=sessions, rt=worker)  # neither failure stops the round
    assert done["cosigned"] == 0
    lines = [
        json.loads(line)
        for line in server_logs.lines
        if "a witness did not cosign" in line and json.loads(line).get("petition") == petition.id
    ]
    assert {line["witness"] for line in lines} == {UNREACHABLE, url}
    assert any("does not know this log's origin" in line["reason"] for line in lines)
    assert all(line["time"].endswith(":00:00.000+00:00") for line in lines)  # no minute, no second
    assert client.get(f"/api/v1/petitions/{petition.id}/log").json()["witnesses"] == []

    jobs.run_once(sessions=sessions, rt=worker)  # still failing: asked again, but logged once per checkpoint
    again = [
        line
        for line in server_logs.lines
        if "a witness did not cosign" in line and f'"petition": {petition.id}' in line
    ]
    assert len(again) == len(lines)

    # The witness's operator adds the log: the next round has the checkpoint cosigned.
    holder["witness"] = SpecWitness(
        WITNESS_NAME, WITNESS_KEY, [signature_log.log_verifier_key(rt, petition.id)], clock=lambda: 1796000000
    )
    assert jobs.run_once(sessions=sessions, rt=worker)["cosigned"] >= 1
    assert client.get(f"/api/v1/petitions/{petition.id}/log").json()["witnesses"] == [WITNESS_NAME]


def words(html: str) -> str:
    """The page's text as a reader takes it in: tags dropped, whitespace collapsed."""
    import re

    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_petition_page_says_which_witnesses_cosigned_the_head_and_as_of_when(
    new_browser: Callable[[], Browser],
    db: Session,
    rt: Runtime,
    sessions: sessionmaker[Session],
    spec_server,
    client,
    clock: FrozenClock,
) -> None:
    url, holder = spec_server
    petition = factories.open_petition(db, rt)
    holder["witness"] = SpecWitness(
        WITNESS_NAME, WITNESS_KEY, [signature_log.log_verifier_key(rt, petition.id)], clock=lambda: 1796000000
    )
    explained = (
        "Witnesses are independent parties who check that everyone is shown the same log, so this site "
        "cannot show one person a count of their own."
    )
    page = words(client.get(f"/petitions/{petition.id}").text)
    assert f"not cosigned yet by its witnesses ({WITNESS_NAME})." in page and explained in page

    next_hour(clock)
    jobs.run_once(sessions=sessions, rt=with_urls(rt, url))
    page = words(client.get(f"/petitions/{petition.id}").text)
    # The clock stands at 10:07 on 24 November 2026; the page gives the hour the cosignature came, no finer.
    assert f"cosigned by {WITNESS_NAME} as of 24 November 2026, 10:00." in page and explained in page
    assert "not yet by" not in page

    for _ in range(2):  # two signatures in two batches: the witness, not asked, is two entries behind
        sign_in_as(new_browser(), db, factories.worker(db)).api(
            "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}
        )
        assert signature_log.flush(sessions=sessions, rt=rt) == 1
    page = words(client.get(f"/petitions/{petition.id}").text)
    assert "not cosigned yet: its witnesses last cosigned it as of 24 November 2026, 10:00, 2 entries ago." in page, (
        page[page.find("Signature log") :][:600]
    )


def test_the_page_names_a_witness_that_has_not_cosigned_the_head_yet(
    database_url: str,
    connection: Connection,
    clock: FrozenClock,
    db: Session,
    sessions: sessionmaker[Session],
    spec_server,
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from fastapi.testclient import TestClient

    late = SpecWitness("late.example.org/w2", Ed25519PrivateKey.generate(), [], lambda: 0)
    two = build_test_app(make_settings(database_url, log_witnesses=[witness_vkey(), late.vkey()]), connection, clock)
    rt = two.state.runtime
    url, holder = spec_server
    petition = factories.open_petition(db, rt)
    holder["witness"] = SpecWitness(
        WITNESS_NAME, WITNESS_KEY, [signature_log.log_verifier_key(rt, petition.id)], clock=lambda: 1796000000
    )
    next_hour(clock)
    jobs.run_once(sessions=sessions, rt=with_urls(rt, url))
    with TestClient(two, base_url="http://testserver") as reader:
        page = words(reader.get(f"/petitions/{petition.id}").text)
    assert f"cosigned by {WITNESS_NAME} as of 24 November 2026, 10:00 (not yet by late.example.org/w2)." in page, page[
        page.find("Signature log") :
    ][:600]


def test_a_witness_time_public_to_the_second_dates_a_checkpoint_no_finer_than_its_hour(
    new_browser: Callable[[], Browser],
    db: Session,
    rt: Runtime,
    sessions: sessionmaker[Session],
    spec_server,
    client,
    clock: FrozenClock,
) -> None:
    """Adversary: someone reading the public log decodes each witness line's time (cosignature/v1, seconds) and
    looks for a checkpoint cosigned within its own hour, which would date the batch behind it, and so a batch's
    one anonymous signature, to the worker's round after it (minutes). Every line must be dated after the end of
    the hour the checkpoint was made in, whatever minute the batch and the rounds come."""
    url, holder = spec_server
    petition = factories.open_petition(db, rt)
    # A real witness stamps the moment it is asked.
    holder["witness"] = SpecWitness(
        WITNESS_NAME,
        WITNESS_KEY,
        [signature_log.log_verifier_key(rt, petition.id)],
        clock=lambda: int(clock.now().timestamp()),
    )
    worker = with_urls(rt, url)
    clock.advance(timedelta(minutes=41, seconds=9))  # 09:41:09: a signature, its batch, the worker's rounds
    sign_in_as(new_browser(), db, factories.worker(db)).api(
        "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}
    )
    assert signature_log.flush(sessions=sessions, rt=rt) == 1
    for _ in range(4):  # the worker's rounds, about five minutes apart, to 10:23
        jobs.run_once(sessions=sessions, rt=worker)
        clock.advance(timedelta(minutes=5))
        jobs.run_once(sessions=sessions, rt=worker)
        clock.advance(timedelta(minutes=5, seconds=30))
    next_hour(clock)
    jobs.run_once(sessions=sessions, rt=worker)

    head = client.get(f"/api/v1/petitions/{petition.id}/log").json()
    assert head["size"] == 2 and head["witnesses"] == [WITNESS_NAME]
    dated = []
    for line in head["checkpoint"].splitlines():
        if line.startswith("\u2014 " + WITNESS_NAME):
            (seconds,) = struct.unpack(">Q", base64.b64decode(line.split(" ")[2])[4:12])
            dated.append(datetime.fromtimestamp(seconds, UTC))
    assert dated, head["checkpoint"]
    checkpoint_hour = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # the batch came at 09:41
    assert all(moment >= checkpoint_hour + timedelta(hours=1) for moment in dated), dated
