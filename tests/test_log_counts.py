"""Counts under signature (issue #20): every figure the petition page and the API publish is the log's, or is what
the log holds plus what waits for the next batch, and `undersigned verify` fails loudly on any other.

Each attack is the dishonest operator's method, written as code against the database the server reads, then
checked with the `verify` command the way a colleague runs it (in process: its requests go to the app directly).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import cli
from app.clients import log as log_client
from app.core import b64url, blindrsa
from app.core.runtime import Runtime
from app.log import service as signature_log
from app.log import tree
from app.log.verifier import check, encode
from app.models.anonymous import IssuingKey
from app.petitions import issuing_keys
from tests import factories
from tests.conftest import Browser, sign_in_as
from tests.test_anonymous import submit, wallet

NewBrowser = Callable[[], Browser]


@pytest.fixture
def reader(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def outside(reader: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """`undersigned verify`'s requests, sent to the app in process, without cookies, past any cache."""

    def get(path: str) -> Any:
        reader.cookies.clear()
        rt.cache.clear()
        return reader.get(path)

    class Connection:  # what the command reads the API with
        def __init__(self, base_url: str, *args: object) -> None:
            pass

        def anonymous(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
            reply = get(path)
            return reply.status_code, reply.json()

    def fetcher(base_url: str):
        def fetch(path: str, page: bool) -> tuple[int, Any]:
            reply = get(path)
            return reply.status_code, reply.text if page else reply.json()

        return fetch

    monkeypatch.setattr(log_client, "Connection", Connection)
    monkeypatch.setattr(log_client, "_fetcher", fetcher, raising=False)
    return reader


def verify(petition_id: int, state: Path, *extra: str):
    return CliRunner().invoke(
        cli,
        ["verify", f"http://testserver/petitions/{petition_id}", "--state", str(state), *extra],
        catch_exceptions=False,
    )


def signed_petition(
    db: Session, rt: Runtime, new_browser: NewBrowser, sessions: sessionmaker[Session], reader: TestClient
) -> int:
    """Two colleagues sign with their names, a third anonymously; the batch logs them."""
    petition = factories.open_petition(db, rt, allow_anonymous=True)
    for visibility in ("public", "organizers"):
        assert (
            sign_in_as(new_browser(), db, factories.worker(db))
            .api("POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": visibility})
            .status_code
            == 201
        )
    tokens, _ = wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert submit(reader, petition.id, tokens[petition.id]).status_code == 202
    assert signature_log.flush(sessions=sessions, rt=rt) >= 3  # the three signatures (and the issuance totals)
    return petition.id


def test_an_honest_log_passes_and_every_figure_adds_up(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside, tmp_path: Path
) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    last = outside.get(f"/api/v1/petitions/{petition_id}/log/entries?start=4&limit=1").json()["entries"]
    assert json.loads(b64url.decode(last[0]["entry"])) == {"kind": "issuance", "tokens_issued": 1, "spent_by_name": 0}
    head = outside.get(f"/api/v1/petitions/{petition_id}/log").json()
    assert head["counts"] == {
        "signatures": 3,
        "withdrawals": 0,
        "tally": 3,
        "anonymous": 1,
        "forfeits": 0,
        "tokens_issued": 1,
        "spent_by_name": 0,
    }
    assert head["waiting"] == {"signatures": 0, "anonymous": 0, "withdrawals": 0, "forfeits": 0}
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 0, result.output
    assert "PASS: tally 3" in result.output

    # A new signature between batches: the page shows it, the log will; the difference is said and checked.
    assert (
        sign_in_as(new_browser(), db, factories.worker(db))
        .api("POST", f"/api/v1/petitions/{petition_id}/signature", {"visibility": "public"})
        .status_code
        == 201
    )
    page = outside.get(f"/petitions/{petition_id}").text
    assert log_client.page_figures(page)["signature_count"] == 4 and log_client.page_figures(page)["log_tally"] == 3
    assert "1 newer signature waits for the next batch" in page
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 0, result.output


def test_a_changed_count_in_the_database_fails(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside, tmp_path: Path
) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    db.execute(text("UPDATE petitions SET signature_count = signature_count + 5 WHERE id = :p"), {"p": petition_id})
    db.commit()
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "shows 8 for signature count, but the log's tally 3" in result.output

    # The anonymous count the page shows is the key's counter: moved by hand, it fails the same way.
    db.execute(text("UPDATE petitions SET signature_count = signature_count - 5 WHERE id = :p"), {"p": petition_id})
    db.execute(
        text("UPDATE issuing_keys SET anonymous_signatures = anonymous_signatures + 2 WHERE petition_id = :p"),
        {"p": petition_id},
    )
    db.commit()
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1 and "shows 3 for anonymous signatures" in result.output, result.output


def test_a_leaf_appended_without_a_checkpoint_plus_a_counter_bump_fails(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside, tmp_path: Path
) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    signed_size = signature_log.latest_checkpoint(db=db, petition_id=petition_id).size  # type: ignore[union-attr]
    tree.append(
        db, petition_id, [encode({"kind": "signature", "visibility": "named", "commitment": secrets.token_hex(16)})]
    )
    db.execute(text("UPDATE petitions SET signature_count = signature_count + 1 WHERE id = :p"), {"p": petition_id})
    db.commit()
    # The unsigned leaf is not served as part of the signed log...
    entries = outside.get(f"/api/v1/petitions/{petition_id}/log/entries?start=0&limit=1000").json()
    assert entries["size"] == signed_size and len(entries["entries"]) == signed_size
    assert (
        outside.get(
            f"/api/v1/petitions/{petition_id}/log/inclusion?index={signed_size}&size={signed_size + 1}"
        ).status_code
        == 422
    )
    # ... and the count it was meant to back is one the log does not hold.
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "shows 4 for signature count, but the log's tally 3" in result.output


def test_a_bumped_tokens_issued_does_not_cover_a_minted_token(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside, tmp_path: Path
) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    # The operator unseals the issuing key, signs a token for nobody, and sends it like any wallet would.
    key = db.get_one(IssuingKey, petition_id)
    signer = issuing_keys.signer_for(key=key, rt=rt)
    public = blindrsa.PublicKey.from_spki(bytes(key.spki))
    message = blindrsa.prepare(secrets.token_bytes(32))
    blinded = blindrsa.blind(public, message)
    minted = (message, blindrsa.finalize(public, message, signer.blind_sign(blinded.blinded_msg), blinded.inv))
    assert submit(outside, petition_id, minted).status_code == 202
    assert signature_log.flush(sessions=sessions, rt=rt) == 1  # the minted signature, alone in its batch
    # Then raises the count of tokens issued so the bound holds again, and lets a batch commit the new figure.
    db.execute(
        text("UPDATE issuing_keys SET tokens_issued = tokens_issued + 1 WHERE petition_id = :p"), {"p": petition_id}
    )
    db.commit()
    signature_log.flush(sessions=sessions, rt=rt)
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "2 anonymous signatures but the log had committed only 1 tokens issued" in result.output


def test_issuance_totals_never_go_down_and_entries_carry_their_index(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside, tmp_path: Path
) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    saved = tmp_path / "saved"
    assert verify(petition_id, tmp_path / "state.json", "--save", str(saved)).exit_code == 0
    log = json.loads((saved / "log.json").read_text())
    # A server that serves entries under other indices than their place: the reader's copy says so.
    swapped = dict(log, indices=[1, 0] + log["indices"][2:])
    (tmp_path / "swapped").mkdir()
    (tmp_path / "swapped" / "log.json").write_text(json.dumps(swapped))
    result = CliRunner().invoke(
        cli, ["verify", "--offline", str(tmp_path / "swapped"), "--state", str(tmp_path / "other.json")]
    )
    assert result.exit_code == 1 and "gave entry 0 the index 1" in result.output, result.output

    # A log whose issuance totals went down: a signed count was rewritten.
    entries = [b64url.decode(entry) for entry in log["entries"]]
    entries.append(encode({"kind": "issuance", "tokens_issued": 0, "spent_by_name": 0}))
    key = db.get_one(IssuingKey, petition_id)
    from app.core import merkle
    from app.log import checkpoint as notes

    root = merkle.root_of([merkle.leaf_hash(entry) for entry in entries])
    origin = signature_log.origin(rt, petition_id)
    note = notes.sign(
        notes.Checkpoint(origin=origin, size=len(entries), root=root), origin, signature_log.signing_key(rt)
    )
    report = check(
        entries=entries,
        checkpoints=log["checkpoints"] + [note],
        log_key=notes.parse_verifier_key(signature_log.log_verifier_key(rt, petition_id)),
        issuing_key_spki=bytes(key.spki),
        tokens_issued=key.tokens_issued,
        petition_id=petition_id,
    )
    assert any("issuance totals went down" in problem for problem in report.problems), report.problems
