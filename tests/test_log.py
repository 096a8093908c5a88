"""The signature log in use: entry 0 at opening, signatures of every kind, withdrawals, voids, corrections and
the key's destruction appended in batches, each batch checkpointed; the verifier agrees with the counter."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from app.core import merkle
from app.core.runtime import Runtime
from app.log import checkpoint as notes
from app.log import service as signature_log
from app.log import tree
from app.log.verifier import check
from app.models.anonymous import IssuingKey
from app.models.log import LogCheckpoint, LogLeaf
from app.models.petitions import Petition
from app.petitions import service as petitions
from tests import factories
from tests.conftest import Browser, sign_in_as
from tests.test_anonymous import submit, wallet

NewBrowser = Callable[[], Browser]


@pytest.fixture
def anonymous_client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def entries_of(db: Session, petition_id: int) -> list[dict[str, object]]:
    db.expire_all()
    rows = db.query(LogLeaf).filter(LogLeaf.petition_id == petition_id).order_by(LogLeaf.index).all()
    return [json.loads(row.entry) for row in rows]


def verify(db: Session, rt: Runtime, petition_id: int):
    db.expire_all()
    raw = [
        bytes(row.entry) for row in db.query(LogLeaf).filter(LogLeaf.petition_id == petition_id).order_by(LogLeaf.index)
    ]
    notes_ = [row.note for row in db.query(LogCheckpoint).filter(LogCheckpoint.petition_id == petition_id)]
    key = db.get(IssuingKey, petition_id)
    name, public = notes.parse_verifier_key(signature_log.verifier_key(rt))
    return check(
        entries=raw,
        checkpoints=notes_,
        log_key=(name, public),
        issuing_key_spki=bytes(key.spki) if key else None,
        tokens_issued=key.tokens_issued if key else 0,
    )


def test_a_petition_log_from_opening_to_closing(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions: sessionmaker[Session], anonymous_client
) -> None:
    petition = factories.open_petition(db, rt, allow_anonymous=True)
    (entry0,) = entries_of(db, petition.id)
    key = db.get(IssuingKey, petition.id)
    assert entry0["kind"] == "petition" and entry0["key_id"] == key.key_id and entry0["version"] == 1  # type: ignore[union-attr]
    assert signature_log.latest_checkpoint(db=db, petition_id=petition.id).size == 1  # type: ignore[union-attr]

    ana, ben, chen = (factories.worker(db, name=name) for name in ("Ana Silva", "Ben Okafor", "Chen Wei"))
    for user, visibility in ((ana, "public"), (ben, "organizers")):
        browser = sign_in_as(new_browser(), db, user)
        assert (
            browser.api("POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": visibility}).status_code
            == 201
        )
    tokens, _ = wallet(sign_in_as(new_browser(), db, chen))
    assert submit(anonymous_client, petition.id, tokens[petition.id]).status_code == 202
    assert signature_log.flush(sessions=sessions, rt=rt) == 4
    kinds = sorted(str(entry.get("visibility")) for entry in entries_of(db, petition.id)[1:4])
    assert kinds == ["anonymous", "named", "named"]
    # The batch ends with the issuance totals as they stood: signed with the anonymous entry they bound.
    assert entries_of(db, petition.id)[4] == {"kind": "issuance", "tokens_issued": 1, "spent_by_name": 0}
    # No name is ever written to the log: it is public for good, and names may be hidden or erased later.
    assert "Ana Silva" not in json.dumps(entries_of(db, petition.id)) and "Ben" not in json.dumps(
        entries_of(db, petition.id)
    )
    # A receipt: the named signer's leaf, in the API and on the sign panel.
    ana_browser = sign_in_as(new_browser(), db, ana)
    receipt = ana_browser.get(f"/api/v1/petitions/{petition.id}/signature").json()
    assert entries_of(db, petition.id)[receipt["log_index"]]["visibility"] == "named"
    assert (
        receipt["leaf_hash"]
        and f"Your receipt: entry {receipt['log_index']}" in ana_browser.get(f"/petitions/{petition.id}").text
    )
    # The receipt's name says what it holds: the RFC 9162 leaf hash (0x00 || entry), which inclusion proofs start
    # from, not a SHA-256 of the entry.
    leaf = db.query(LogLeaf).filter(LogLeaf.petition_id == petition.id, LogLeaf.index == receipt["log_index"]).one()
    assert bytes.fromhex(receipt["leaf_hash"]) == merkle.leaf_hash(bytes(leaf.entry))
    assert "entry_sha256" not in receipt

    # Ana withdraws; the text is corrected; the petition closes (its key is destroyed).
    assert (
        sign_in_as(new_browser(), db, ana).api("DELETE", f"/api/v1/petitions/{petition.id}/signature").status_code
        == 204
    )
    petitions.correct_text(
        db=db,
        rt=rt,
        petition=db.get_one(Petition, petition.id),
        actor=db.get_one(type(ana), petition.creator_id),
        form=factories.correction(),
    )
    petitions.close(db=db, rt=rt, petition=db.get_one(Petition, petition.id), actor=None, reason="done")
    db.commit()
    assert signature_log.flush(sessions=sessions, rt=rt) == 3
    later = [str(entry["kind"]) for entry in entries_of(db, petition.id)[5:]]
    assert sorted(later) == ["key_destroyed", "version", "withdrawal"]

    report = verify(db, rt, petition.id)
    assert report.ok, report.problems
    db.expire_all()
    assert report.tally == db.get_one(Petition, petition.id).signature_count == 2
    assert report.anonymous == 1
    assert signature_log.flush(sessions=sessions, rt=rt) == 0  # nothing waiting


def test_a_signature_withdrawn_before_its_batch_never_appears(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions: sessionmaker[Session]
) -> None:
    petition = factories.open_petition(db, rt)
    browser = sign_in_as(new_browser(), db, factories.worker(db))
    browser.api("POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"})
    browser.api("DELETE", f"/api/v1/petitions/{petition.id}/signature")
    assert signature_log.flush(sessions=sessions, rt=rt) == 0
    assert tree.head(db, petition.id).size == 1  # type: ignore[union-attr]


def test_petitions_that_never_opened_have_no_log(db: Session, rt: Runtime, sessions: sessionmaker[Session]) -> None:
    draft = factories.draft_petition(db, rt)
    assert tree.head(db, draft.id) is None
    assert db.execute(text("SELECT count(*) FROM log_leaves WHERE petition_id = :p"), {"p": draft.id}).scalar() == 0


def test_a_petition_opened_before_logs_existed_gets_its_entry_0_at_the_next_batch(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions: sessionmaker[Session]
) -> None:
    petition = factories.open_petition(db, rt)
    for table in ("log_checkpoints", "log_leaves", "log_heads"):
        db.execute(text(f"DELETE FROM {table} WHERE petition_id = :p"), {"p": petition.id})
    db.commit()
    sign_in_as(new_browser(), db, factories.worker(db)).api(
        "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}
    )
    assert signature_log.flush(sessions=sessions, rt=rt) == 1
    kinds = [entry["kind"] for entry in entries_of(db, petition.id)]
    assert kinds == ["petition", "signature"] and verify(db, rt, petition.id).ok


def test_proof_requests_out_of_range_are_clear_errors(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    petition = factories.open_petition(db, rt)
    reader = new_browser()
    base = f"/api/v1/petitions/{petition.id}/log"
    assert reader.get(f"{base}/inclusion?index=0&size=1").json()["proof"] == []
    assert reader.get(f"{base}/inclusion?index=5&size=1").status_code == 422
    assert reader.get(f"{base}/inclusion?index=0&size=9").status_code == 422
    assert reader.get(f"{base}/consistency?old=2&new=1").status_code == 422
    assert reader.get("/api/v1/petitions/999999/log/inclusion?index=0&size=1").status_code == 404
    draft = factories.draft_petition(db, rt)
    assert reader.get(f"/api/v1/petitions/{draft.id}/log/consistency?old=1&new=1").status_code == 404


def test_a_hidden_petitions_log_shown_to_its_organizer_is_kept_by_no_shared_cache(
    new_browser: Callable[[], Browser], db: Session, rt: Runtime
) -> None:
    """Adversary: a shared cache (CDN, proxy) between the site and its readers keeps what an answer allows. The
    organizer of a petition the moderators hid still reads its log; if that answer said `public`, the cache
    would hand the organizer's copy to anyone asking the same address, while the site answers them 404."""
    from app.moderation import service as moderation

    creator = factories.worker(db)
    listed = factories.open_petition(db, rt, creator)
    hidden = factories.open_petition(db, rt, creator)
    moderation.hide(db=db, rt=rt, petition=hidden, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    organizer = sign_in_as(new_browser(), db, creator)
    for path in ("", "/entries?start=0&limit=1", "/entries?start=0&limit=10", "/checkpoints?after=0"):
        reply = organizer.get(f"/api/v1/petitions/{hidden.id}/log{path}")
        assert reply.status_code == 200, path
        assert reply.headers["cache-control"] == "private, no-store", path
        assert "cookie" in reply.headers["vary"].lower(), path
        assert new_browser().get(f"/api/v1/petitions/{hidden.id}/log{path}").status_code == 404, path
        # A listed petition's log stays cacheable by anyone, as before.
        assert (
            organizer.get(f"/api/v1/petitions/{listed.id}/log{path}").headers["cache-control"].startswith("public")
        ), path
