"""Fork detection by gossip (issue #20): `undersigned verify --gossip URL` sends the checkpoint a reader verified
to a witness, and fails when the witness saw another log.

The server here is a dishonest operator's, in process: one log key, and a different log for each reader, every
one validly signed. Each reader passes alone; gossiping through one witness, the second reader fails."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from app.clients import log as log_client
from app.core import b64url, merkle
from app.core.runtime import Runtime
from app.log import checkpoint as notes
from app.log import service as signature_log
from app.log import witness as witnessing
from app.log.verifier import check, encode
from tests import factories
from tests.conftest import sign_in_as
from tests.serving import serving
from tests.test_log_counts import outside, reader  # noqa: F401 (fixtures)

pytestmark = pytest.mark.one_database

PETITION = 42
ORIGIN = f"petitions.example.org/petitions/{PETITION}"
LOG_KEY = Ed25519PrivateKey.generate()
LOG_VKEY = notes.verifier_key(ORIGIN, LOG_KEY.public_key())
WITNESS = "witness.example.net/gossip"
WITNESS_KEY = Ed25519PrivateKey.generate()
WITNESS_VKEY = notes.witness_verifier_key(WITNESS, WITNESS_KEY.public_key())
URL = f"http://petitions.example.org/petitions/{PETITION}"


def named() -> bytes:
    return encode({"kind": "signature", "visibility": "named", "commitment": secrets.token_hex(16)})


def log_of(signatures: int) -> list[bytes]:
    return [
        encode({"kind": "petition", "petition": PETITION, "version": 1, "text_sha256": "00" * 32, "key_id": None})
    ] + [named() for _ in range(signatures)]


class ForkedServer:
    """A deployment that serves each reader the log it chose for them, all signed with the one log key."""

    def __init__(self, entries: list[bytes], *, unsigned: list[bytes] | None = None, shift: int = 0) -> None:
        self.entries = entries
        self.unsigned = unsigned or []  # leaves appended with no checkpoint over them, served all the same
        self.shift = shift  # added to every index the entries page gives

    def _note(self, size: int) -> str:
        root = merkle.root_of([merkle.leaf_hash(entry) for entry in self.entries[:size]])
        return notes.sign(notes.Checkpoint(origin=ORIGIN, size=size, root=root), ORIGIN, LOG_KEY)

    def fetch(self, path: str, page: bool) -> tuple[int, Any]:
        size = len(self.entries)
        base = f"/api/v1/petitions/{PETITION}"
        if page:
            return 200, "<html></html>"
        if path == base:
            return 200, {"signature_count": size - 1}
        if path == "/api/v1/anonymous/keys":
            return 200, []  # this petition takes no anonymous signatures
        if path == f"{base}/log":
            counts = check(
                entries=self.entries,
                checkpoints=[self._note(size)],
                log_key=(ORIGIN, LOG_KEY.public_key()),
                issuing_key_spki=None,
                tokens_issued=0,
            ).counts()
            return 200, {
                "origin": ORIGIN,
                "log_key": LOG_VKEY,
                "size": size,
                "checkpoint": self._note(size),
                "witnesses": [],
                "issuing_key": None,
                "counts": counts,
                "waiting": {"signatures": 0, "anonymous": 0, "withdrawals": 0, "forfeits": 0},
            }
        if path.startswith(f"{base}/log/entries"):
            start = int(path.split("start=")[1].split("&")[0])
            return 200, {
                "size": size,
                "entries": [
                    {"index": index + self.shift, "entry": b64url.encode(entry)}
                    for index, entry in enumerate(self.entries + self.unsigned)
                    if index >= start
                ],
            }
        if path.startswith(f"{base}/log/checkpoints"):
            after = int(path.split("after=")[1].split("&")[0])
            return 200, {"checkpoints": [self._note(size)] if size > after else []}
        if path.startswith(f"{base}/log/consistency"):
            old, new = (int(part.split("=")[1]) for part in path.split("?")[1].split("&"))
            subtrees = merkle.memory_subtrees([merkle.leaf_hash(entry) for entry in self.entries])
            return 200, {
                "old": old,
                "new": new,
                "proof": [b64url.encode(node) for node in merkle.consistency_proof(old, new, subtrees)],
            }
        return 404, {"error": {"message": "not found"}}


@pytest.fixture
def witness(tmp_path: Path) -> witnessing.Witness:
    return witnessing.Witness(
        name=WITNESS, key=WITNESS_KEY, logs=[LOG_VKEY], state_file=tmp_path / "witness.json", clock=lambda: 1796000000
    )


def post_to(witness: witnessing.Witness):
    def post(url: str, body: bytes) -> tuple[int, str, str]:
        assert url == "http://witness.example.net/gossip/add-checkpoint"
        status, kind, answer = witness.add_checkpoint(body)
        return status, kind, answer.decode()

    return post


def reads(
    server: ForkedServer, state: Path, witness: witnessing.Witness | None, *, fetch_later: ForkedServer | None = None
):
    """One reader's `verify`, gossiping through the witness when there is one."""
    log = log_client.download(URL, server.fetch)
    if witness is None:
        return log_client.verify(log, state)
    return log_client.verify(
        log,
        state,
        witnesses=[WITNESS_VKEY],
        gossip=["http://witness.example.net/gossip"],
        post=post_to(witness),
        fetch=(fetch_later or server).fetch,
    )


def test_a_fork_of_the_same_size_fails_the_second_reader_through_one_witness(witness, tmp_path: Path) -> None:
    honest = log_of(3)
    forked = honest[:-1] + [named()]  # the same count: only the last commitment differs
    # Alone, each reader passes: neither can tell.
    assert reads(ForkedServer(honest), tmp_path / "a-alone.json", None).ok
    assert reads(ForkedServer(forked), tmp_path / "b-alone.json", None).ok

    first = reads(ForkedServer(honest), tmp_path / "a.json", witness)
    assert first.ok, first.problems
    assert f"the witness agrees with checkpoint 4, cosigned by {WITNESS}" in first.summary()
    second = reads(ForkedServer(forked), tmp_path / "b.json", witness)
    assert not second.ok
    assert any("another tree of 4 entries" in problem and "forked" in problem for problem in second.problems), (
        second.problems
    )
    # The reader shown the witnessed log still passes, and keeps passing.
    assert reads(ForkedServer(honest), tmp_path / "a.json", witness).ok
    # A failed gossip keeps nothing: the forked view was not remembered as seen.
    assert not (tmp_path / "b.json").exists()


def test_a_longer_fork_fails_on_the_consistency_proof(witness, tmp_path: Path) -> None:
    honest = log_of(3)
    forked = honest[:2] + [named(), named(), named()]  # rewrites entry 2, then grows past the honest log
    assert reads(ForkedServer(honest), tmp_path / "a.json", witness).ok
    second = reads(ForkedServer(forked), tmp_path / "b.json", witness)
    assert any("a tree of 4 entries that is not the start of the 5" in problem for problem in second.problems), (
        second.problems
    )


def test_a_reader_behind_the_witness_checks_the_newer_tree(witness, tmp_path: Path) -> None:
    honest = log_of(4)
    # The honest log grew after the second reader downloaded it: the server proves its newer tree extends theirs.
    assert reads(ForkedServer(honest), tmp_path / "a.json", witness).ok
    stale = reads(ForkedServer(honest[:3]), tmp_path / "b.json", witness, fetch_later=ForkedServer(honest))
    assert stale.ok, stale.problems
    assert "the witness agrees with checkpoint 5" in stale.summary()

    # A reader shown an old fork: the server's newer tree does not extend it...
    old_fork = honest[:2] + [named()]
    behind = reads(ForkedServer(old_fork), tmp_path / "c.json", witness, fetch_later=ForkedServer(honest))
    assert any("is not an extension of the 3 you verified" in problem for problem in behind.problems), behind.problems
    # ... or it does, on its own branch, which is not the tree the witness cosigned.
    branch = old_fork + [named(), named()]
    behind = reads(ForkedServer(old_fork), tmp_path / "d.json", witness, fetch_later=ForkedServer(branch))
    assert any("another tree of 5 entries than the one this server shows" in problem for problem in behind.problems), (
        behind.problems
    )
    # ... or it has no checkpoint of the witness's size at all.
    behind = reads(ForkedServer(old_fork), tmp_path / "e.json", witness)
    assert any("shows no checkpoint of that size" in problem for problem in behind.problems), behind.problems


@contextlib.contextmanager
def served_witness(log_key: str, state_file: Path) -> Iterator[str]:
    """`undersigned witness --serve` over real HTTP, for one log."""
    server = witnessing.serve(
        witnessing.Witness(name=WITNESS, key=WITNESS_KEY, logs=[log_key], state_file=state_file), "127.0.0.1", 0
    )
    with serving(server):
        yield f"http://127.0.0.1:{server.server_address[1]}"


def test_verify_gossip_on_the_command_line(
    new_browser,
    db: Session,
    rt: Runtime,
    sessions,
    outside,
    tmp_path: Path,
) -> None:
    petition = factories.open_petition(db, rt)
    assert (
        sign_in_as(new_browser(), db, factories.worker(db))
        .api("POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"})
        .status_code
        == 201
    )
    assert signature_log.flush(sessions=sessions, rt=rt) == 1
    with served_witness(signature_log.log_verifier_key(rt, petition.id), tmp_path / "w.json") as url:
        result = CliRunner().invoke(
            cli,
            [
                "verify",
                f"http://testserver/petitions/{petition.id}",
                "--state",
                str(tmp_path / "state.json"),
                "--gossip",
                url,
                "--witness",
                WITNESS_VKEY,
            ],
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    assert f"gossip with {url}: the witness agrees with checkpoint 2, cosigned by {WITNESS}" in result.output
    # A witness that cannot be reached is said, and is not a pass: the reader asked for the check.
    result = CliRunner().invoke(
        cli,
        [
            "verify",
            f"http://testserver/petitions/{petition.id}",
            "--state",
            str(tmp_path / "state.json"),
            "--gossip",
            "http://127.0.0.1:9/",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 1 and "gossip with http://127.0.0.1:9/ failed: Could not reach" in result.output


def test_entries_served_beyond_the_checkpoint_or_under_other_indices_fail(tmp_path: Path) -> None:
    honest = log_of(3)
    assert reads(ForkedServer(honest), tmp_path / "a.json", None).ok
    beyond = reads(ForkedServer(honest, unsigned=[named()]), tmp_path / "b.json", None)
    assert (
        "the server served 1 entries beyond its latest checkpoint, as if part of the signed log" in beyond.problems
    ), beyond.problems
    shifted = reads(ForkedServer(honest, shift=1), tmp_path / "c.json", None)
    assert "the server gave entry 0 the index 1" in shifted.problems, shifted.problems
