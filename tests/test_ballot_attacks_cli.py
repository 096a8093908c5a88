"""The adversary against `undersigned client answer` (issue #25), through the recording proxy of tests/test_client.py:
a server that hands one worker a poll key of its own, and what the client sends in the same moment as its signed-in
requests."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests import live_server
from tests.test_ballot_credentials_cli import make_ballot
from tests.test_client import (  # noqa: F401 (pytest finds the fixtures by name)
    PETITION,
    Proxy,
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


@pytest.mark.xfail(
    strict=True,
    reason="finding for ballots-creds (app/clients/answer.py): the first answer is sent in the run that signs in",
)
def test_the_first_answer_is_not_sent_in_the_same_moment_as_the_signed_in_collection(
    server: live_server.LiveServer, proxy: Proxy, tmp_path: Path
) -> None:
    """The attack: the operator's proxy (or any network observer) sees the account's signed-in request for its
    credentials and, milliseconds later from the same address, the cookie-less answer: the answer is the account's.
    `client sign` anonymously queues the signature for a random later moment (`client send`) for this reason; the
    first `client answer` of a poll collects and answers in one run."""
    ballot_id = make_ballot(server)
    wallet = tmp_path / "wallet.json"
    answered = run(
        "answer", f"{proxy.base_url}/polls/{ballot_id}", "--choice", "0", *signed_in(new_member(server, "wim"), wallet)
    )
    assert answered.exit_code == 0, answered.output
    answer_at = next(
        index for index, seen in enumerate(proxy.seen) if seen.path.endswith(f"/ballots/{ballot_id}/answers")
    )
    signed_in_before = [seen.path for seen in proxy.seen[:answer_at] if seen.cookie]
    assert signed_in_before == [], f"signed-in requests in the same run, just before the answer: {signed_in_before}"


def proxy_get(proxy: Proxy, path: str) -> Any:
    with urllib.request.urlopen(f"{proxy.base_url}{path}") as response:
        return json.load(response)
