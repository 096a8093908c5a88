"""A lying server's malformed answers to `undersigned verify` (issue #20 review, F4): every one is refused in words,
a ClientError the command line prints before exiting 1, or a report with problems; never a traceback, and never an
endless paging of /checkpoints. The server is tests/test_log_gossip.py's in-process deployment, one answer changed."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.clients import log as log_client
from app.clients.anonymous import ClientError
from tests.test_log_gossip import URL, ForkedServer, log_of

Change = Callable[[Any], Any]
MAX_REQUESTS = 200  # an honest read of this 4-entry log takes a dozen


class Mutated(ForkedServer):
    """The honest server, with `change` applied to the answers of paths ending in `suffix`; counts requests."""

    def __init__(self, suffix: str, change: Change) -> None:
        super().__init__(log_of(3))
        self.suffix, self.change, self.requests = suffix, change, 0

    def fetch(self, path: str, page: bool) -> tuple[int, Any]:
        self.requests += 1
        assert self.requests <= MAX_REQUESTS, f"verify keeps asking: {path}"
        status, body = super().fetch(path, page)
        if path.split("?")[0].endswith(self.suffix) and not isinstance(body, str):
            return status, self.change(copy.deepcopy(body))
        return status, body


def setting(key: str, value: object) -> Change:
    return lambda body: {**body, key: value}


def first_entry(value: object) -> Change:
    def change(body: dict[str, Any]) -> dict[str, Any]:
        body["entries"][0]["entry"] = value
        return body

    return change


REPEATED = ForkedServer(log_of(3))._note(4)  # a checkpoint of another log of the same size

CASES: dict[str, tuple[str, Change]] = {
    "head's log key garbage": ("/log", setting("log_key", "garbage")),
    "head without log key": ("/log", lambda body: {k: v for k, v in body.items() if k != "log_key"}),
    "head's size a string": ("/log", setting("size", "3")),
    "head's size negative": ("/log", setting("size", -1)),
    "head a list": ("/log", lambda body: [body]),
    "head's counts a string": ("/log", setting("counts", "x")),
    "tokens issued a word": ("/log", setting("issuing_key", {"spki": "AAAA", "tokens_issued": "many"})),
    "issuing key not base64": ("/log", setting("issuing_key", {"spki": "!!!", "tokens_issued": 1})),
    "waiting a list": ("/log", setting("waiting", [1])),
    "entry not base64": ("/entries", first_entry("!!!***")),
    "entry one character": ("/entries", first_entry("A")),
    "entry only padding": ("/entries", first_entry("=")),
    "entry a number": ("/entries", first_entry(5)),
    "entries not a list": ("/entries", setting("entries", {"a": 1})),
    "entries without index": (
        "/entries",
        lambda body: {"entries": [{"entry": item["entry"]} for item in body["entries"]]},
    ),
    "checkpoint garbage": ("/checkpoints", lambda body: {"checkpoints": ["garbage"] if body["checkpoints"] else []}),
    "checkpoint size negative": (
        "/checkpoints",
        lambda body: {"checkpoints": [note.replace("\n4\n", "\n-5\n") for note in body["checkpoints"]]},
    ),
    "checkpoints repeated forever": ("/checkpoints", lambda body: {"checkpoints": [REPEATED]}),
    "checkpoints not a list": ("/checkpoints", setting("checkpoints", "x")),
    "petition API a list": ("/petitions/42", lambda body: [1]),
    "key list a dict": ("/anonymous/keys", lambda body: {"x": 1}),
    "key list of strings": ("/anonymous/keys", lambda body: ["x"]),
}


@pytest.mark.parametrize("suffix,change", CASES.values(), ids=CASES.keys())
def test_a_malformed_answer_is_refused_in_words(tmp_path: Path, suffix: str, change: Change) -> None:
    server = Mutated(suffix, change)
    try:
        report = log_client.verify(log_client.download(URL, server.fetch), tmp_path / "state.json")
    except ClientError as error:
        assert "Traceback" not in str(error) and str(error).strip()
    else:
        assert not report.ok, "a malformed answer passed verify"
        assert not (tmp_path / "state.json").exists()  # nothing remembered from a log that did not pass


def test_the_honest_server_passes(tmp_path: Path) -> None:
    """The cases above change one answer of a server that passes as it is."""
    server = Mutated("/nothing", lambda body: body)
    report = log_client.verify(log_client.download(URL, server.fetch), tmp_path / "state.json")
    assert report.ok, report.problems


@pytest.mark.parametrize(
    "head", [[1], {"size": "3"}, {"log_key": "garbage", "size": 0}], ids=["list", "no key", "garbage key"]
)
def test_the_command_line_refuses_a_malformed_saved_log_with_exit_code_1(tmp_path: Path, head: object) -> None:
    server = ForkedServer(log_of(3))
    log = log_client.download(URL, server.fetch)
    log["head"] = head
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "log.json").write_text(json.dumps(log))
    result = CliRunner().invoke(
        cli,
        ["verify", "--offline", str(tmp_path / "saved"), "--state", str(tmp_path / "state.json")],
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    assert "is malformed" in result.output and "Traceback" not in result.output
