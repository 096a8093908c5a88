"""Checkpoints (C2SP signed notes) and the log verifier: a good log passes, and each kind of tampering the
verifiable tally must catch is caught."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.anonymous.service import encode as b64url
from app.core import blindrsa, merkle
from app.log import checkpoint as notes
from app.log.verifier import check, encode

LOG = "undersigned.example.org"
ORIGIN = "undersigned.example.org/petitions/42"


@pytest.fixture(scope="module")
def issuing_key() -> blindrsa.PrivateKey:
    return blindrsa.PrivateKey.generate(1024)


@pytest.fixture(scope="module")
def log_private() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def token(key: blindrsa.PrivateKey) -> dict[str, Any]:
    message = blindrsa.prepare(secrets.token_bytes(32))
    blinded = blindrsa.blind(key.public, message)
    signature = blindrsa.finalize(
        key.public, message, blindrsa.Signer(key).blind_sign(blinded.blinded_msg), blinded.inv
    )
    return {"kind": "signature", "visibility": "anonymous", "message": b64url(message), "signature": b64url(signature)}


def build(key: blindrsa.PrivateKey) -> list[bytes]:
    entries: list[dict[str, object]] = [
        {"kind": "petition", "petition": 42, "version": 1, "text_sha256": "ab" * 32, "key_id": key.public.key_id()},
        {"kind": "signature", "visibility": "named", "commitment": secrets.token_hex(16)},
        {"kind": "signature", "visibility": "named", "commitment": secrets.token_hex(16)},
        token(key),
        token(key),
        {"kind": "withdrawal", "entry": 1},
        {"kind": "signature", "visibility": "named", "commitment": secrets.token_hex(16)},
    ]
    return [encode(entry) for entry in entries]


def checkpoint_note(entries: list[bytes], size: int, private: Ed25519PrivateKey) -> str:
    root = merkle.root_of([merkle.leaf_hash(entry) for entry in entries[:size]])
    return notes.sign(notes.Checkpoint(origin=ORIGIN, size=size, root=root), LOG, private)


def run(entries, checkpoints, key, private, issued=2, seen=None, petition_id=42):
    return check(
        entries=entries,
        checkpoints=checkpoints,
        log_key=(LOG, private.public_key()),
        issuing_key_spki=key.public.spki(),
        tokens_issued=issued,
        petition_id=petition_id,
        seen=seen,
    )


def test_a_checkpoint_is_a_c2sp_signed_note(log_private: Ed25519PrivateKey) -> None:
    note = notes.sign(notes.Checkpoint(origin=ORIGIN, size=7, root=b"\x01" * 32), LOG, log_private)
    body, _, signature_line = note.partition("\n\n")
    assert body == f"{ORIGIN}\n7\n{'AQEB' * 10}AQE=" and signature_line.startswith(f"\u2014 {LOG} ")
    name, public = notes.parse_verifier_key(notes.verifier_key(LOG, log_private.public_key()))
    assert notes.verify(note, log_key=(name, public)).checkpoint.size == 7
    witness = Ed25519PrivateKey.generate()
    cosigned = note + notes.cosign(note, "union.example.org", witness)
    signed = notes.verify(
        cosigned, log_key=(LOG, log_private.public_key()), witnesses={"union.example.org": witness.public_key()}
    )
    assert signed.signers == {LOG, "union.example.org"}


def test_a_good_log_passes_with_its_tally(issuing_key, log_private) -> None:
    entries = build(issuing_key)
    report = run(
        entries,
        [checkpoint_note(entries, 4, log_private), checkpoint_note(entries, 7, log_private)],
        issuing_key,
        log_private,
    )
    assert report.ok, report.problems
    assert (report.tally, report.signatures, report.withdrawals, report.anonymous) == (4, 5, 1, 2)
    assert report.summary().startswith("PASS: tally 4")


def test_a_removed_entry_is_caught(issuing_key, log_private) -> None:
    entries = build(issuing_key)
    notes_before = [checkpoint_note(entries, 7, log_private)]
    report = run(entries[:2] + entries[3:], notes_before, issuing_key, log_private)
    assert not report.ok and any("removed" in problem for problem in report.problems)


def test_a_rewritten_entry_is_caught(issuing_key, log_private) -> None:
    entries = build(issuing_key)
    seen = {5: merkle.root_of([merkle.leaf_hash(entry) for entry in entries[:5]])}  # a root seen before
    rewritten = list(entries)
    rewritten[1] = encode({"kind": "signature", "visibility": "named", "commitment": "00" * 16})
    report = run(rewritten, [checkpoint_note(rewritten, 7, log_private)], issuing_key, log_private, seen=seen)
    assert any("rewritten" in problem for problem in report.problems)


def test_a_forked_log_is_caught(issuing_key, log_private) -> None:
    entries = build(issuing_key)
    other = entries[:6] + [encode({"kind": "signature", "visibility": "named", "commitment": "11" * 16})]
    report = run(
        entries,
        [checkpoint_note(entries, 7, log_private), checkpoint_note(other, 7, log_private)],
        issuing_key,
        log_private,
    )
    assert any("forked" in problem for problem in report.problems)


def test_a_bad_checkpoint_signature_is_caught(issuing_key, log_private) -> None:
    entries = build(issuing_key)
    forged = checkpoint_note(entries, 7, Ed25519PrivateKey.generate())
    report = run(entries, [forged], issuing_key, log_private)
    assert any("bad checkpoint" in problem for problem in report.problems)
    tampered = checkpoint_note(entries, 7, log_private).replace("\n7\n", "\n6\n")
    assert any("bad checkpoint" in problem for problem in run(entries, [tampered], issuing_key, log_private).problems)


def test_a_token_used_twice_is_caught(issuing_key, log_private) -> None:
    entries = build(issuing_key)
    entries.append(entries[3])
    report = run(entries, [checkpoint_note(entries, len(entries), log_private)], issuing_key, log_private, issued=3)
    assert any("used twice" in problem for problem in report.problems)


def test_more_anonymous_signatures_than_tokens_issued_is_caught(issuing_key, log_private) -> None:
    entries = build(issuing_key)
    report = run(entries, [checkpoint_note(entries, 7, log_private)], issuing_key, log_private, issued=1)
    assert any("only 1 tokens issued" in problem for problem in report.problems)


def test_a_token_from_another_key_is_caught(issuing_key, log_private) -> None:
    entries = build(issuing_key)
    entries.append(encode(token(blindrsa.PrivateKey.generate(1024))))
    report = run(entries, [checkpoint_note(entries, len(entries), log_private)], issuing_key, log_private, issued=3)
    assert any("did not sign" in problem for problem in report.problems)


def test_a_log_without_a_checkpoint_over_all_its_entries_fails(issuing_key, log_private) -> None:
    entries = build(issuing_key)
    assert any(
        "no signed checkpoint covers" in problem for problem in run(entries, [], issuing_key, log_private).problems
    )
    padded = entries + [encode({"kind": "signature", "visibility": "named", "commitment": "22" * 16})]
    report = run(padded, [checkpoint_note(entries, 7, log_private)], issuing_key, log_private)
    assert any("covers all 8" in problem for problem in report.problems)


def test_another_petitions_log_cannot_stand_in(issuing_key, log_private) -> None:
    entries = build(issuing_key)
    report = run(entries, [checkpoint_note(entries, 7, log_private)], issuing_key, log_private, petition_id=7)
    assert any("not petition 7" in problem for problem in report.problems)
    assert any("log of petition 42, not of 7" in problem for problem in report.problems)
