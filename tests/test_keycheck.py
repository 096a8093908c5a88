"""The command-line wallet's key check against entry 0, for the discussion key (issue #20), on a log built here:
a discussion key other than the one entry 0 commits is refused, as is any when entry 0 commits none; a log opened
before entry 0 named the discussion key (no `discussion_key_id` field) keeps working, its key held to the list
published to everyone."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.anonymous.client import ClientError
from app.anonymous.keycheck import KeyCheck
from app.core import blindrsa, merkle
from app.core.b64url import encode as b64e
from app.log import checkpoint as notes
from app.log.verifier import encode

PETITION = 7
BASE_URL = "https://petitions.example.org"
ORIGIN = f"petitions.example.org/petitions/{PETITION}"
LOG_KEY = Ed25519PrivateKey.generate()
SIGNING = blindrsa.PrivateKey.generate(1024).public
DISCUSSION = blindrsa.PrivateKey.generate(1024).public
ANOTHER = blindrsa.PrivateKey.generate(1024).public


class Server:
    """Answers the cookie-less reads of one petition: its published keys and a one-entry log."""

    def __init__(self, entry_zero: dict[str, object], discussion: blindrsa.PublicKey = DISCUSSION) -> None:
        self.base_url = BASE_URL
        leaf = encode(entry_zero)
        note = notes.sign(notes.Checkpoint(origin=ORIGIN, size=1, root=merkle.leaf_hash(leaf)), ORIGIN, LOG_KEY)
        log = f"/api/v1/petitions/{PETITION}/log"
        self.answers: dict[str, Any] = {
            "/api/v1/anonymous/keys": [
                {"petition_id": PETITION, "purpose": "sign", "key_id": SIGNING.key_id(), "spki": b64e(SIGNING.spki())},
                {"petition_id": PETITION, "purpose": "discuss", "key_id": discussion.key_id(),
                 "spki": b64e(discussion.spki())}],
            log: {"log_key": notes.verifier_key(ORIGIN, LOG_KEY.public_key()), "checkpoint": note},
            f"{log}/entries?start=0&limit=1": {"entries": [{"index": 0, "entry": b64e(leaf)}]},
            f"{log}/inclusion?index=0&size=1": {"proof": []},
        }

    def anonymous(self, method: str, path: str) -> tuple[int, Any]:
        return (200, self.answers[path]) if path in self.answers else (404, None)


def entry_zero(**discussion: object) -> dict[str, object]:
    return {"kind": "petition", "petition": PETITION, "version": 1, "text_sha256": "ab" * 32,
            "key_id": SIGNING.key_id(), **discussion}


def check(server: Server, tmp_path: Path, key: blindrsa.PublicKey = DISCUSSION) -> dict[str, str]:
    remembered: dict[str, str] = {}
    KeyCheck(server, state_file=tmp_path / "verified.json", remembered=remembered).require(  # type: ignore[arg-type]
        petition_id=PETITION, purpose="discuss", key_id=key.key_id(), spki=b64e(key.spki()))
    return remembered


def test_a_discussion_key_entry_0_commits_is_accepted_and_remembered(tmp_path: Path) -> None:
    remembered = check(Server(entry_zero(discussion_key_id=DISCUSSION.key_id())), tmp_path)
    assert remembered == {f"{BASE_URL}|{PETITION}|discuss": DISCUSSION.key_id()}


@pytest.mark.parametrize("committed", [DISCUSSION.key_id(), None], ids=["another key", "no key"])
def test_a_discussion_key_entry_0_does_not_commit_is_refused(tmp_path: Path, committed: str | None) -> None:
    # The server shows this account ANOTHER key, in the published list too: entry 0 says otherwise.
    server = Server(entry_zero(discussion_key_id=committed), discussion=ANOTHER)
    with pytest.raises(ClientError, match="its discussion key is not the key its signature log committed to"):
        check(server, tmp_path, ANOTHER)


def test_a_log_opened_before_entry_0_named_the_discussion_key_holds_it_to_the_published_list(tmp_path: Path) -> None:
    assert check(Server(entry_zero()), tmp_path) == {f"{BASE_URL}|{PETITION}|discuss": DISCUSSION.key_id()}
    with pytest.raises(ClientError, match="differs from the one published to everyone"):
        check(Server(entry_zero()), tmp_path / "other", ANOTHER)


def test_entries_and_proofs_read_in_either_base64_alphabet(tmp_path: Path) -> None:
    """The log's binary fields move to base64url: a server still writing standard base64 is read the same."""
    server = Server(entry_zero(discussion_key_id=DISCUSSION.key_id()))
    entries = server.answers[f"/api/v1/petitions/{PETITION}/log/entries?start=0&limit=1"]
    raw = base64.urlsafe_b64decode(entries["entries"][0]["entry"] + "==")
    entries["entries"][0]["entry"] = base64.b64encode(raw).decode()
    assert check(server, tmp_path) == {f"{BASE_URL}|{PETITION}|discuss": DISCUSSION.key_id()}
