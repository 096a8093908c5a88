"""The command-line wallet against a real server: sign anonymously, confirm it is published, and refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.demo import DEMO_PASSWORD
from tests import live_server

PETITION = "Publish the salary bands for every role"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("client") / "client.db")
    try:
        yield live
    finally:
        live.stop()


def get(server: live_server.LiveServer, path: str) -> dict[str, object]:
    return live_server.get_json(server, path)


def petition_url(server: live_server.LiveServer) -> str:
    return live_server.petition_url(server, PETITION)


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["client", *args], catch_exceptions=False)


def test_sign_anonymously_from_the_terminal_and_check_it(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = petition_url(server)
    petition_id = int(url.rsplit("/", 1)[1])
    wallet = tmp_path / "wallet.json"
    before = get(server, f"/api/v1/petitions/{petition_id}")["signature_count"]
    signed = run("sign", url, "--anonymous", "--email", "chen@example.org", "--password", DEMO_PASSWORD,
                 "--wallet", str(wallet))
    assert signed.exit_code == 0, signed.output
    assert "Queued: your anonymous signature will appear" in signed.output
    assert get(server, f"/api/v1/petitions/{petition_id}")["signature_count"] == before + 1  # type: ignore[operator]
    stored = json.loads(wallet.read_text())
    assert {token["status"] for token in stored.values()} >= {"submitted"}
    checked = run("check", url, "--wallet", str(wallet))
    assert checked.exit_code == 0 and "published and counted" in checked.output
    # The same token again is refused: one member, one signature.
    again = run("sign", url, "--anonymous", "--email", "chen@example.org", "--password", DEMO_PASSWORD,
                "--wallet", str(wallet))
    assert again.exit_code == 1 and "You already signed this petition with this wallet" in again.output


def test_signing_with_a_name_spends_the_token(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = petition_url(server)
    wallet = tmp_path / "wallet.json"
    signed = run("sign", url, "--public", "--email", "dara@example.org", "--password", DEMO_PASSWORD,
                 "--wallet", str(wallet))
    assert signed.exit_code == 0, signed.output
    assert "Signed with your name shown to everyone." in signed.output
    spent = [token for token in json.loads(wallet.read_text()).values() if token["status"] == "spent"]
    assert len(spent) == 1


def test_bad_input_is_a_clear_message(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wrong = run("sign", "not a url", "--email", "chen@example.org", "--password", "x", "--wallet",
                str(tmp_path / "w.json"))
    assert wrong.exit_code == 1 and "Give the petition's address" in wrong.output
    refused = run("sign", petition_url(server), "--email", "chen@example.org", "--password", "wrong password",
                  "--wallet", str(tmp_path / "w.json"))
    assert refused.exit_code == 1 and "Traceback" not in refused.output
