"""`undersigned verify` and `undersigned witness` against a real server: a log that checks out, a tampered copy
that does not, and a witness cosigning checkpoint after checkpoint."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from app import jobs
from app.cli import cli
from app.log import checkpoint as notes
from tests import live_server

PETITION = "Stop recording our screens to train AI"
WITNESS = "union.example.org"
WITNESS_KEY = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(
        tmp_path_factory.mktemp("log") / "log.db", log_witnesses=[notes.verifier_key(WITNESS, WITNESS_KEY.public_key())]
    )
    app = live.app
    jobs.run_once(sessions=app.state.sessionmaker, rt=app.state.runtime)  # the batch: the demo's signatures
    try:
        yield live
    finally:
        live.stop()


def get(server: live_server.LiveServer, path: str) -> dict[str, object]:
    return live_server.get_json(server, path)


def petition_url(server: live_server.LiveServer) -> str:
    return live_server.petition_url(server, PETITION)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_verify_passes_and_counts_the_tally(server, tmp_path: Path) -> None:
    url = petition_url(server)
    petition = get(server, "/api/v1/petitions/" + url.rsplit("/", 1)[1])
    result = run("verify", url, "--state", str(tmp_path / "state.json"), "--save", str(tmp_path / "saved"))
    assert result.exit_code == 0, result.output
    assert f"PASS: tally {petition['signature_count']}" in result.output
    # The proofs API agrees with the saved entries.
    head = get(server, f"/api/v1/petitions/{petition['id']}/log")
    proof = get(server, f"/api/v1/petitions/{petition['id']}/log/inclusion?index=1&size={head['size']}")
    assert proof["proof"]

    # A copy with one entry rewritten fails, offline, against the checkpoints it carries and the state.
    saved = json.loads((tmp_path / "saved" / "log.json").read_text())
    saved["entries"][1] = base64.b64encode(b'{"commitment":"00","kind":"signature","visibility":"named"}').decode()
    (tmp_path / "tampered").mkdir()
    (tmp_path / "tampered" / "log.json").write_text(json.dumps(saved))
    tampered = run("verify", "--offline", str(tmp_path / "tampered"), "--state", str(tmp_path / "state.json"))
    assert tampered.exit_code == 1 and "FAIL" in tampered.output and "rewritten" in tampered.output


def test_a_witness_cosigns_consistent_checkpoints(server, tmp_path: Path) -> None:
    url = petition_url(server)
    key_file = tmp_path / "witness.key"
    key_file.write_text(base64.b64encode(WITNESS_KEY.private_bytes_raw()).decode())
    state = tmp_path / "witnessed.json"
    first = run("witness", url, "--name", WITNESS, "--key", str(key_file), "--state", str(state))
    assert first.exit_code == 0, first.output
    assert "Cosigned checkpoint" in first.output
    petition_id = url.rsplit("/", 1)[1]
    assert get(server, f"/api/v1/petitions/{petition_id}/log")["witnesses"] == [WITNESS]
    page = urllib.request.urlopen(url).read().decode()
    assert WITNESS in page and "undersigned verify" in page

    # A stranger's key is refused.
    stranger = tmp_path / "stranger.key"
    refused = run(
        "witness",
        url,
        "--name",
        "stranger.example",
        "--key",
        str(stranger),
        "--generate",
        "--state",
        str(tmp_path / "other.json"),
    )
    assert refused.exit_code == 1 and "not among the deployment's witnesses" in refused.output


def test_a_cosignature_is_one_line_from_a_configured_witness(server, tmp_path: Path) -> None:
    import urllib.error

    url = petition_url(server)
    petition_id = url.rsplit("/", 1)[1]
    head = get(server, f"/api/v1/petitions/{petition_id}/log")
    good = notes.cosign(str(head["checkpoint"]), WITNESS, WITNESS_KEY).strip()
    forged = notes.cosign(str(head["checkpoint"]), "other.example", Ed25519PrivateKey.generate()).strip()
    for line in (forged, forged + "\n" + good, good + "\r\n" + good):
        request = urllib.request.Request(f"{server.base_url}/api/v1/csrf")
        with urllib.request.urlopen(request) as reply:
            cookie = reply.headers["set-cookie"].split(";")[0]
            token = json.loads(reply.read())["csrf_token"]
        post = urllib.request.Request(
            f"{server.base_url}/api/v1/petitions/{petition_id}/log/cosignatures",
            method="POST",
            data=json.dumps({"size": head["size"], "line": line}).encode(),
            headers={"Content-Type": "application/json", "Cookie": cookie, "X-CSRF-Token": token},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post)
        assert refused.value.code == 422
        refused.value.close()
