"""The adversary against `undersigned client answer` (issue #25), through the recording proxy of tests/test_client.py:
a server that hands one worker a poll key of its own, and what the client sends in the same moment as its signed-in
requests."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from app.clients import anonymous as anonymous_client
from app.core import b64url
from tests import live_server
from tests.test_ballot_credentials_cli import make_ballot
from tests.test_client import (  # noqa: F401 (pytest finds the fixtures by name)
    PETITION,
    Proxy,
    clock,
    new_member,
    petition_url,
    proxy,
    run,
    server,
    signed_in,
)


def test_a_poll_key_shown_to_one_worker_alone_is_refused_before_anything_is_sent(
    server: live_server.LiveServer, proxy: Proxy, tmp_path: Path
) -> None:
    """The attack: the server shows this worker's client a key for the poll that is not the one its log's entry 0
    commits nor the one published to everyone (here another open poll's real key), so the credential it then signs
    marks this worker's answer. The client must refuse before the exchange: nothing is sent under that key."""
    petition = petition_url(server, proxy, PETITION)
    petition_id = int(petition.rstrip("/").split("/")[-1])
    ballot_id = make_ballot(server, petition_id=petition_id)
    decoy_id = make_ballot(server, petition_id=petition_id)
    wallet = tmp_path / "wallet.json"
    signed = run("sign", petition, "--public", *signed_in(new_member(server, "vera"), wallet))
    assert signed.exit_code == 0, signed.output
    decoy = proxy_get(proxy, f"/api/v1/ballots/{decoy_id}")

    def own_key(ballot: Any) -> Any:
        return {**ballot, "key": decoy["key"]}

    proxy.tamper[f"/api/v1/ballots/{ballot_id}"] = own_key
    refused = run("answer", f"{proxy.base_url}/polls/{ballot_id}", "--choice", "0", "--wallet", str(wallet))
    assert refused.exit_code == 1, refused.output
    assert "nothing was sent" in " ".join(refused.output.split()).lower()
    assert not [seen for seen in proxy.seen if seen.method == "POST" and f"/ballots/{ballot_id}/" in seen.path]


def test_the_first_answer_is_not_sent_in_the_same_moment_as_the_signed_in_collection(
    server: live_server.LiveServer, proxy: Proxy, tmp_path: Path, clock: list[float]
) -> None:
    """The attack: the operator's proxy (or any network observer) sees the account's signed-in request for its
    credentials and, milliseconds later from the same address, the cookie-less answer: the answer is the account's.
    `client sign` anonymously queues the signature for a random later moment (`client send`) for this reason; the
    first `client answer` of a poll collects, so it must queue its answer the same way."""
    ballot_id = make_ballot(server)
    wallet = tmp_path / "wallet.json"
    clock[0] = time.time()  # the live server's poll closes in a week of real time
    answered = run(
        "answer", f"{proxy.base_url}/polls/{ballot_id}", "--choice", "0", *signed_in(new_member(server, "wim"), wallet)
    )
    assert answered.exit_code == 0, answered.output
    assert "Queued" in answered.output
    assert not [seen for seen in proxy.seen if f"/ballots/{ballot_id}/" in seen.path and seen.method == "POST"]
    (first,) = json.loads(wallet.read_text())["outbox"]
    # A second run before the first is sent replaces it (the credential is held now: sent at once), so the older
    # choice is never sent after the newer one.
    changed = run(
        "answer", f"{proxy.base_url}/polls/{ballot_id}", "--choice", "2", "--wallet", str(wallet), "--within", "3"
    )
    assert changed.exit_code == 0, changed.output
    assert "replaces it" in changed.output and json.loads(wallet.read_text())["outbox"] == []
    assert first["choice"] == [0]
    # Queued again, as a fresh wallet's first answer is (a new account and wallet).
    wallet = tmp_path / "other.json"
    answered = run(
        "answer", f"{proxy.base_url}/polls/{ballot_id}", "--choice", "0", *signed_in(new_member(server, "wil"), wallet)
    )
    assert answered.exit_code == 0 and "Queued" in answered.output, answered.output
    (item,) = json.loads(wallet.read_text())["outbox"]
    assert clock[0] + 2 * 3600 <= item["due"] <= clock[0] + 12 * 3600
    clock[0] = item["due"] + 1
    already = len(proxy.seen)
    sent = run("send", "--wallet", str(wallet))
    assert sent.exit_code == 0, sent.output
    assert "was sent without cookies" in sent.output
    answer_at = next(
        index
        for index, seen in enumerate(proxy.seen)
        if index >= already and seen.path.endswith(f"/ballots/{ballot_id}/answers")
    )
    signed_in_before = [seen.path for seen in proxy.seen[already:answer_at] if seen.cookie]
    assert signed_in_before == [], f"signed-in requests in the same run, just before the answer: {signed_in_before}"
    assert proxy.seen[answer_at].cookie is None
    # With the credential held (here, or from `client collect`), a changed answer goes at once, signing nothing in.
    already = len(proxy.seen)
    again = run("answer", f"{proxy.base_url}/polls/{ballot_id}", "--choice", "1", "--wallet", str(wallet))
    assert again.exit_code == 0 and "was sent without cookies" in again.output, again.output
    assert not [seen.path for seen in proxy.seen[already:] if seen.cookie]


def test_an_exchange_reply_that_does_not_verify_is_refused_in_words(
    server: live_server.LiveServer, proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: a server answers the exchange with a reply that is no signature under the poll's key (a
    credential that would not verify, or one it can tell apart later). The client says so plainly, keeps nothing
    and sends no answer, instead of crashing on the check."""
    petition = petition_url(server, proxy, PETITION)
    petition_id = int(petition.rstrip("/").split("/")[-1])
    ballot_id = make_ballot(server, petition_id=petition_id)
    wallet = tmp_path / "wallet.json"
    signed = run("sign", petition, "--public", *signed_in(new_member(server, "xena"), wallet))
    assert signed.exit_code == 0, signed.output
    collected = run("collect", petition, "--wallet", str(wallet))
    assert collected.exit_code == 0 and f"Petition {petition_id}: a signer credential" in collected.output

    honest = anonymous_client.Connection.anonymous

    def forged(self: anonymous_client.Connection, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, reply = honest(self, method, path, body)
        if path.endswith("/exchange") and status == 200:  # the server's reply, one bit off
            signature = b64url.decode(reply["blind_signature"])
            reply = {**reply, "blind_signature": b64url.encode(bytes([signature[0] ^ 1]) + signature[1:])}
        return status, reply

    monkeypatch.setattr(anonymous_client.Connection, "anonymous", forged)
    refused = run("answer", f"{proxy.base_url}/polls/{ballot_id}", "--choice", "0", "--wallet", str(wallet))
    assert refused.exit_code == 1, refused.output
    assert "not a valid credential for this poll's key" in " ".join(refused.output.split())
    assert not [seen for seen in proxy.seen if seen.path.endswith(f"/ballots/{ballot_id}/answers")]
    held = json.loads(wallet.read_text())["credentials"]
    assert not [slot for slot in held if slot.endswith(f"|{ballot_id}|ballot")]


def proxy_get(proxy: Proxy, path: str) -> Any:
    with urllib.request.urlopen(f"{proxy.base_url}{path}") as response:
        return json.load(response)
