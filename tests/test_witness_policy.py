"""Forks (issue #20): two readers shown two different, validly signed logs each pass on their own; with a witness
required (`verify --witnesses N --policy FILE`), the one shown a log no witness saw fails. The petition page says
which witnesses cosigned the head and how far behind their newest cosignature is."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import Connection
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from app.clients import log as log_client
from app.core import b64url, merkle
from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.log import checkpoint as notes
from app.log import service as signature_log
from app.log.verifier import encode
from tests import factories
from tests.conftest import Browser, build_test_app, make_settings, sign_in_as
from tests.test_log_counts import outside, reader  # noqa: F401 (fixtures)
from tests.test_witness_cosignature import spec_vkey

pytestmark = pytest.mark.one_database

WITNESS = "witness.example.net/w1"
WITNESS_KEY = Ed25519PrivateKey.generate()
VKEY = spec_vkey(WITNESS, WITNESS_KEY, b"\x04")  # the witness's cosignature/v1 key, as the spec writes it
NewBrowser = Callable[[], Browser]


@pytest.fixture
def app(database_url: str, connection: Connection, clock: FrozenClock) -> FastAPI:
    return build_test_app(make_settings(database_url, log_witnesses=[VKEY]), connection, clock)


def sign_and_batch(db: Session, rt: Runtime, new_browser: NewBrowser, sessions, petition_id: int) -> None:
    assert (
        sign_in_as(new_browser(), db, factories.worker(db))
        .api("POST", f"/api/v1/petitions/{petition_id}/signature", {"visibility": "public"})
        .status_code
        == 201
    )
    assert signature_log.flush(sessions=sessions, rt=rt) == 1


def witness_cosigns(db: Session, rt: Runtime, petition_id: int) -> int:
    latest = signature_log.latest_checkpoint(db=db, petition_id=petition_id)
    assert latest is not None
    line = notes.cosign(latest.note, WITNESS, WITNESS_KEY, 1796000000).strip()
    signature_log.cosign(db=db, rt=rt, petition_id=petition_id, size=latest.size, line=line)
    db.commit()
    return latest.size


def verify(petition_id: int, tmp_path: Path, *extra: str):
    return CliRunner().invoke(
        cli,
        ["verify", f"http://testserver/petitions/{petition_id}", "--state", str(tmp_path / "state.json"), *extra],
        catch_exceptions=False,
    )


def test_verify_requires_the_witnesses_of_its_policy(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    sessions,
    outside,
    tmp_path: Path,
) -> None:
    petition = factories.open_petition(db, rt)
    sign_and_batch(db, rt, new_browser, sessions, petition.id)
    policy = tmp_path / "witnesses.txt"
    policy.write_text(f"# the union's witness\n{VKEY}\n")
    refused = verify(petition.id, tmp_path, "--witnesses", "1", "--policy", str(policy))
    assert refused.exit_code == 1 and "no checkpoint is cosigned by 1 of the witnesses you trust" in refused.output

    witness_cosigns(db, rt, petition.id)
    passed = verify(petition.id, tmp_path, "--witnesses", "1", "--policy", str(policy))
    assert passed.exit_code == 0, passed.output
    assert f"cosigned by {WITNESS}" in passed.output
    page = outside.get(f"/petitions/{petition.id}").text
    assert f"cosigned by {WITNESS}" in page
    # Asking for more witnesses than the policy names is a mistake said plainly, not a pass.
    assert "names only 1" in verify(petition.id, tmp_path, "--witnesses", "2", "--policy", str(policy)).output

    # A newer checkpoint the witness has not seen yet: not enough, and the page says how far behind it is.
    sign_and_batch(db, rt, new_browser, sessions, petition.id)
    behind = verify(petition.id, tmp_path, "--witnesses", "1", "--witness", VKEY)
    assert behind.exit_code == 1 and "covers 2 entries, not the 3 shown" in behind.output, behind.output
    page = outside.get(f"/petitions/{petition.id}").text
    assert "not cosigned yet: its witnesses last cosigned it as of" in page and "1 entry ago" in page


def test_a_fork_shown_to_two_readers_fails_with_a_witness_required(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    sessions,
    outside,
    tmp_path: Path,
) -> None:
    petition = factories.open_petition(db, rt)
    sign_and_batch(db, rt, new_browser, sessions, petition.id)
    sign_and_batch(db, rt, new_browser, sessions, petition.id)
    witness_cosigns(db, rt, petition.id)
    honest = log_client.download(f"http://testserver/petitions/{petition.id}", log_client._fetcher("http://testserver"))

    # The operator shows a second reader another log of the same size: the last signature's commitment differs
    # (the same count), signed with the log's own key, with no witness's line since no witness would sign it.
    entries = [b64url.decode(entry) for entry in honest["entries"]]
    entries[-1] = encode({"kind": "signature", "visibility": "named", "commitment": secrets.token_hex(16)})
    root = merkle.root_of([merkle.leaf_hash(entry) for entry in entries])
    origin = signature_log.origin(rt, petition.id)
    forged = notes.sign(
        notes.Checkpoint(origin=origin, size=len(entries), root=root), origin, signature_log.signing_key(rt)
    )
    fork = json.loads(json.dumps(honest))
    fork["entries"] = [b64url.encode(entry) for entry in entries]
    fork["checkpoints"][-1] = forged
    fork["head"].update(checkpoint=forged, root=b64url.encode(root), witnesses=[])

    # Each passes on its own without witnesses: neither reader alone can tell.
    assert log_client.verify(honest, tmp_path / "first.json").ok
    assert log_client.verify(fork, tmp_path / "second.json").ok
    # With the witness required, the reader shown the fork fails; the one shown the witnessed log passes.
    assert log_client.verify(honest, tmp_path / "first.json", witnesses=[VKEY], quorum=1).ok
    report = log_client.verify(fork, tmp_path / "second-witnessed.json", witnesses=[VKEY], quorum=1)
    assert not report.ok and any("fork" in problem for problem in report.problems), report.problems
