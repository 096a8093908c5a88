"""The command-line wallet's key check against entry 0, for the discussion key (issue #20), on a log built here:
a discussion key other than the one entry 0 commits is refused, as is any when entry 0 commits none; a log opened
before entry 0 named the discussion key (no `discussion_key_id` field) keeps working, its key held to the list
published to everyone.

Per deployment (issue #20 review, F2 + F3): once this wallet saw an entry 0 of the deployment name the discussion
key, a new petition's entry 0 without the field is refused; the witnesses a log head named are required of every
later petition's log. And a server's malformed answers are refused in words, with no endless paging (F4)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.clients.anonymous import ClientError
from app.clients.keycheck import KeyCheck
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

    def __init__(
        self,
        entry_zero: dict[str, object],
        discussion: blindrsa.PublicKey = DISCUSSION,
        *,
        petition: int = PETITION,
        witnesses: tuple[str, ...] = (),
        cosigners: tuple[str, ...] = (),
    ) -> None:
        """`witnesses`: the verifier keys the log head names; `cosigners`: those of WITNESSES whose cosignature
        its checkpoint carries."""
        self.base_url = BASE_URL
        leaf = encode(entry_zero)
        origin = f"petitions.example.org/petitions/{petition}"
        note = notes.sign(notes.Checkpoint(origin=origin, size=1, root=merkle.leaf_hash(leaf)), origin, LOG_KEY)
        note += "".join(notes.cosign(note, name, WITNESSES[name], timestamp=1796000000) for name in cosigners)
        log = f"/api/v1/petitions/{petition}/log"
        self.answers: dict[str, Any] = {
            "/api/v1/anonymous/keys": [
                {"petition_id": petition, "purpose": "sign", "key_id": SIGNING.key_id(), "spki": b64e(SIGNING.spki())},
                {
                    "petition_id": petition,
                    "purpose": "discuss",
                    "key_id": discussion.key_id(),
                    "spki": b64e(discussion.spki()),
                },
            ],
            log: {
                "log_key": notes.verifier_key(ORIGIN, LOG_KEY.public_key()),
                "checkpoint": note,
                "witness_keys": list(witnesses),
            },
            f"{log}/checkpoints?after=0&limit=1000": {"checkpoints": [note]},
            f"{log}/checkpoints?after=1&limit=1000": {"checkpoints": []},
            f"{log}/entries?start=0&limit=1": {"entries": [{"index": 0, "entry": b64e(leaf)}]},
            f"{log}/inclusion?index=0&size=1": {"proof": []},
        }

    def anonymous(self, method: str, path: str) -> tuple[int, Any]:
        return (200, self.answers[path]) if path in self.answers else (404, None)


def entry_zero(**discussion: object) -> dict[str, object]:
    return {
        "kind": "petition",
        "petition": PETITION,
        "version": 1,
        "text_sha256": "ab" * 32,
        "key_id": SIGNING.key_id(),
        **discussion,
    }


def check(
    server: Server,
    tmp_path: Path,
    key: blindrsa.PublicKey = DISCUSSION,
    *,
    petition: int = PETITION,
    remembered: dict[str, str] | None = None,
) -> dict[str, str]:
    remembered = {} if remembered is None else remembered
    KeyCheck(server, state_file=tmp_path / "verified.json", remembered=remembered).require(  # type: ignore[arg-type]
        petition_id=petition, purpose="discuss", key_id=key.key_id(), spki=b64e(key.spki())
    )
    return remembered


NAMED = f"{BASE_URL}|deployment|discussion_key_id"


def test_a_discussion_key_entry_0_commits_is_accepted_and_remembered(tmp_path: Path) -> None:
    remembered = check(Server(entry_zero(discussion_key_id=DISCUSSION.key_id())), tmp_path)
    assert remembered == {f"{BASE_URL}|{PETITION}|discuss": DISCUSSION.key_id(), NAMED: "named in entry 0"}


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
    assert check(server, tmp_path)[f"{BASE_URL}|{PETITION}|discuss"] == DISCUSSION.key_id()


WITNESSES = {"witness.example.net/w1": Ed25519PrivateKey.generate()}
WITNESS = notes.witness_verifier_key("witness.example.net/w1", WITNESSES["witness.example.net/w1"].public_key())
OTHER = 8  # a second petition of the same deployment


def both(first: Server, second: Server) -> Server:
    """One deployment answering for petition PETITION (`first`) and OTHER (`second`)."""
    keys = first.answers["/api/v1/anonymous/keys"] + second.answers["/api/v1/anonymous/keys"]
    first.answers.update(second.answers)
    first.answers["/api/v1/anonymous/keys"] = keys
    return first


def entry_zero_of(petition: int, **discussion: object) -> dict[str, object]:
    return {**entry_zero(**discussion), "petition": petition}


def test_a_new_petition_without_the_discussion_key_in_entry_0_is_refused_once_the_deployment_named_it(
    tmp_path: Path,
) -> None:
    """The downgrade: the operator opens a new petition "as if before the field existed" and shows this account a
    key of its own (in the list served to it too). Refused, since this deployment's entry 0 named the key before."""
    server = both(
        Server(entry_zero(discussion_key_id=DISCUSSION.key_id())),
        Server(entry_zero_of(OTHER), discussion=ANOTHER, petition=OTHER),
    )
    remembered = check(server, tmp_path)
    with pytest.raises(ClientError, match="entry 0 of its signature log does not name its discussion key"):
        check(server, tmp_path, ANOTHER, petition=OTHER, remembered=remembered)
    assert f"{BASE_URL}|{OTHER}|discuss" not in remembered
    # A wallet that never saw an entry 0 name the key still accepts a log opened before the field existed.
    assert check(server, tmp_path / "fresh", ANOTHER, petition=OTHER)[f"{BASE_URL}|{OTHER}|discuss"] == ANOTHER.key_id()


def test_a_petition_accepted_before_the_deployment_named_the_key_keeps_its_key(tmp_path: Path) -> None:
    """A log opened before the field existed, whose key this wallet accepted then, keeps working after a newer
    petition's entry 0 named its key: it stays held to the key accepted the first time."""
    server = both(
        Server(entry_zero(discussion_key_id=DISCUSSION.key_id())), Server(entry_zero_of(OTHER), petition=OTHER)
    )
    remembered = check(server, tmp_path, petition=OTHER)
    check(server, tmp_path, remembered=remembered)
    assert NAMED in remembered
    check(server, tmp_path, petition=OTHER, remembered=remembered)


def test_the_witnesses_one_petition_named_are_required_of_every_petition_of_the_deployment(tmp_path: Path) -> None:
    committed = {"discussion_key_id": DISCUSSION.key_id()}
    watched = Server(entry_zero(**committed), witnesses=(WITNESS,), cosigners=tuple(WITNESSES))
    remembered = check(watched, tmp_path)
    assert remembered[f"{BASE_URL}|deployment|witnesses"] == f'["{WITNESS}"]'
    # A new petition whose head names no witness and carries no cosignature (a log no witness saw): refused.
    unwatched = both(watched, Server(entry_zero_of(OTHER, **committed), petition=OTHER))
    with pytest.raises(ClientError, match="no longer names the witness witness.example.net/w1"):
        check(unwatched, tmp_path, petition=OTHER, remembered=remembered)
    # Naming the witness without its cosignature is refused too.
    uncosigned = both(
        Server(entry_zero(**committed), witnesses=(WITNESS,), cosigners=tuple(WITNESSES)),
        Server(entry_zero_of(OTHER, **committed), petition=OTHER, witnesses=(WITNESS,)),
    )
    with pytest.raises(ClientError, match="is cosigned by witness.example.net/w1"):
        check(uncosigned, tmp_path, petition=OTHER, remembered=remembered)
    # Named and cosigned: accepted.
    cosigned = both(
        Server(entry_zero(**committed), witnesses=(WITNESS,), cosigners=tuple(WITNESSES)),
        Server(entry_zero_of(OTHER, **committed), petition=OTHER, witnesses=(WITNESS,), cosigners=tuple(WITNESSES)),
    )
    assert (
        check(cosigned, tmp_path, petition=OTHER, remembered=remembered)[f"{BASE_URL}|{OTHER}|discuss"]
        == DISCUSSION.key_id()
    )


def test_a_witness_the_head_names_must_have_cosigned_from_the_first_visit(tmp_path: Path) -> None:
    server = Server(entry_zero(discussion_key_id=DISCUSSION.key_id()), witnesses=(WITNESS,))
    with pytest.raises(ClientError, match="is cosigned by witness.example.net/w1"):
        check(server, tmp_path)


LOG = f"/api/v1/petitions/{PETITION}/log"
MALFORMED: dict[str, tuple[str, object]] = {
    "head without log key": (LOG, {"checkpoint": "x"}),
    "head a list": (LOG, []),
    "head's checkpoint junk": (
        LOG,
        {"log_key": notes.verifier_key(ORIGIN, LOG_KEY.public_key()), "checkpoint": "junk"},
    ),
    "head's witnesses a string": (
        LOG,
        {"log_key": notes.verifier_key(ORIGIN, LOG_KEY.public_key()), "witness_keys": "x"},
    ),
    "head's witness garbage": (
        LOG,
        {"log_key": notes.verifier_key(ORIGIN, LOG_KEY.public_key()), "witness_keys": ["garbage"]},
    ),
    "entries not a list": (f"{LOG}/entries?start=0&limit=1", {"entries": "x"}),
    "proof missing": (f"{LOG}/inclusion?index=0&size=1", {}),
    "key list of strings": ("/api/v1/anonymous/keys", ["x"]),
}


@pytest.mark.parametrize("path,answer", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_answer_is_refused_in_words(tmp_path: Path, path: str, answer: object) -> None:
    server = Server(entry_zero(discussion_key_id=DISCUSSION.key_id()))
    server.answers[path] = answer
    with pytest.raises(ClientError, match="nothing was sent"):
        check(server, tmp_path)


def test_checkpoints_repeated_forever_are_read_once(tmp_path: Path) -> None:
    """A server repeating one page of /checkpoints whatever `after` asks: read once, then refused in words."""
    server = Server(entry_zero(discussion_key_id=DISCUSSION.key_id()), witnesses=(WITNESS,))
    note = server.answers[LOG]["checkpoint"]
    answer = server.anonymous
    asked: list[str] = []

    def repeating(method: str, path: str) -> tuple[int, Any]:
        if "/checkpoints" in path:
            asked.append(path)
            assert len(asked) < 50, "the wallet keeps paging"
            return 200, {"checkpoints": [note]}
        return answer(method, path)

    server.anonymous = repeating  # type: ignore[method-assign]
    with pytest.raises(ClientError, match="is cosigned by witness.example.net/w1"):
        check(server, tmp_path)
    assert len(asked) == 2
