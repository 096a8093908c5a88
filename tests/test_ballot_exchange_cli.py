"""`undersigned client answer` on a signers' poll with batching on (issue #25): the server takes the exchange for its
next batch (202); the client keeps the pending exchange in its wallet file and says to run the command again after
the batch, and the rerun completes it and sends the answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import main as app_main
from tests import live_server
from tests.test_ballot_credentials_cli import counted, make_ballot
from tests.test_client import (  # noqa: F401 (pytest finds the fixtures by name)
    PETITION,
    Proxy,
    new_member,
    petition_url,
    proxy,
    run,
    signed_in,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    # Batching on, every batch let out whatever its size (k = 1); the test runs the batch itself when it needs one.
    live = live_server.serve_demo(
        tmp_path_factory.mktemp("client") / "exchange.db", anonymous_batch_seconds=3600, min_group_size=1
    )
    try:
        yield live
    finally:
        live.stop()


def batch(server: live_server.LiveServer) -> None:
    app_main._write_anonymous_batch(server.app)


def test_a_waiting_exchange_is_kept_and_completed_by_the_next_run(
    server: live_server.LiveServer, proxy: Proxy, tmp_path: Path
) -> None:
    petition = petition_url(server, proxy, PETITION)
    petition_id = int(petition.rstrip("/").split("/")[-1])
    ballot_id = make_ballot(server, petition_id=petition_id)
    url = f"{proxy.base_url}/polls/{ballot_id}"
    wallet = tmp_path / "wallet.json"
    email = new_member(server, "wanda")
    signed = run("sign", petition, "--public", *signed_in(email, wallet))
    assert signed.exit_code == 0, signed.output
    assert run("collect", petition, *signed_in(email, wallet)).exit_code == 0
    first = run("answer", url, "--choice", "1", "--wallet", str(wallet))
    assert first.exit_code == 0, first.output
    said = " ".join(first.output.split())
    assert "written with the server's next batch" in said and "run the same command again" in said
    slot = next(slot for slot in json.loads(wallet.read_text())["credentials"] if slot.endswith(f"|{ballot_id}|ballot"))
    pending = json.loads(wallet.read_text())["credentials"][slot]
    assert pending["status"] == "pending" and {"message", "blinded", "inv"} <= set(pending)
    assert counted(server, ballot_id) == []
    # Again before the batch: still waiting, the same request, nothing else kept.
    again = run("answer", url, "--choice", "1", "--wallet", str(wallet))
    assert again.exit_code == 0 and "next batch" in again.output
    assert json.loads(wallet.read_text())["credentials"][slot]["blinded"] == pending["blinded"]
    batch(server)  # the exchange is written
    done = run("answer", url, "--choice", "1", "--wallet", str(wallet))
    assert done.exit_code == 0, done.output
    assert "was sent without cookies" in done.output
    assert json.loads(wallet.read_text())["credentials"][slot]["status"] == "held"
    exchanges = [seen for seen in proxy.seen if seen.path.endswith(f"/ballots/{ballot_id}/exchange")]
    assert len(exchanges) == 3 and not any(seen.cookie for seen in exchanges)
    for _ in range(20):
        batch(server)
        if counted(server, ballot_id):
            break
        time.sleep(0.1)
    assert counted(server, ballot_id) == [(1, "[1]", False)]


def test_client_send_backs_off_while_the_exchange_still_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Review: `client send` came back every batch interval while the exchange still waited (fewer than k exchanges
    and answers for hours): twelve tries an hour, over the server's ten per signer credential, so the queued answer
    was refused (429) and left aside for the rest of `client send --wait`. It backs off as the browser wallet does,
    twice as long each time, up to twelve batches, and stays before the close."""
    from datetime import UTC, datetime, timedelta

    from app.ballots import limits
    from app.clients import anonymous as client_module
    from app.clients import answer as client_answer

    now = [1_000_000.0]
    closes = datetime.fromtimestamp(now[0], UTC) + timedelta(days=2)
    ballot = {"id": 7, "state": "open", "closes_at": closes.isoformat()}
    monkeypatch.setattr(client_module, "clock", lambda: now[0])
    monkeypatch.setattr(client_answer, "read_ballot", lambda connection, ballot_id: ballot)
    monkeypatch.setattr(client_answer, "check_choice", lambda ballot, choice: None)
    monkeypatch.setattr(client_answer, "check_group", lambda ballot, group: None)

    def still_waiting(*args: object, **kwargs: object) -> str:
        raise client_answer.ExchangeWaiting(300)

    monkeypatch.setattr(client_answer, "send", still_waiting)
    item: dict[str, Any] = {"ballot_id": 7, "base_url": "http://x", "email": "a@x", "choice": [0], "group": None}
    item["due"] = now[0]
    tries = []
    while now[0] < 1_000_000.0 + 6 * 3600:
        tries.append(now[0])
        assert client_answer.send_queued(None, {}, item, None)[1] == "waiting"  # type: ignore[arg-type]
        assert item["due"] > now[0]
        now[0] = float(item["due"])
    in_first_hour = [moment for moment in tries if moment < 1_000_000.0 + 3600]
    assert len(in_first_hour) <= limits.EXCHANGES_PER_HOUR
    # Near the close: never due after it.
    now[0] = closes.timestamp() - 600
    item["due"] = now[0]
    client_answer.send_queued(None, {}, item, None)  # type: ignore[arg-type]
    assert item["due"] < closes.timestamp()
