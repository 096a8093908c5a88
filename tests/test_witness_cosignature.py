"""Standard witnesses (issue #20): the log speaks C2SP signed-note, tlog-checkpoint and tlog-cosignature.

The expected bytes here are built from the specifications' text (c2sp.org/signed-note, tlog-checkpoint,
tlog-cosignature), with hashlib and the Ed25519 primitive only, never with the project's note code."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from app.core import blindrsa, merkle
from app.core.clock import FrozenClock
from app.core.errors import InvalidInput
from app.core.runtime import Runtime
from app.log import checkpoint as notes
from app.log import service as signature_log
from app.log.verifier import check, encode
from tests import factories
from tests.conftest import build_test_app, make_settings

pytestmark = pytest.mark.one_database

WITNESS = "witness.example.net/w1"
WITNESS_KEY = Ed25519PrivateKey.generate()
DASH = "\u2014"


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes_raw()


def spec_cosignature(note: str, name: str, private: Ed25519PrivateKey, timestamp: int) -> str:
    """tlog-cosignature, Ed25519: key ID = SHA-256(name || "\\n" || 0x04 || key)[:4]; the signed message is
    "cosignature/v1\\n" "time <t>\\n" and the note body; the signature is u64 big-endian timestamp || Ed25519."""
    body = note.split("\n\n", 1)[0] + "\n"
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x04" + raw_public(private)).digest()[:4]
    message = b"cosignature/v1\n" + f"time {timestamp}\n".encode() + body.encode()
    signature = private.sign(message)
    return f"{DASH} {name} {base64.b64encode(key_id + timestamp.to_bytes(8, 'big') + signature).decode()}\n"


def spec_vkey(name: str, private: Ed25519PrivateKey, kind: bytes) -> str:
    key_id = hashlib.sha256(name.encode() + b"\n" + kind + raw_public(private)).digest()[:4]
    return f"{name}+{key_id.hex()}+{base64.b64encode(kind + raw_public(private)).decode()}"


@pytest.fixture
def witnessed_rt(database_url: str, connection: Connection, clock: FrozenClock) -> Runtime:
    settings = make_settings(database_url, log_witnesses=[spec_vkey(WITNESS, WITNESS_KEY, b"\x04")])
    return build_test_app(settings, connection, clock).state.runtime


def test_the_witness_writes_cosignature_v1_lines_byte_for_byte() -> None:
    log = Ed25519PrivateKey.generate()
    origin = "petitions.example.org/petitions/42"
    note = notes.sign(notes.Checkpoint(origin=origin, size=20852163, root=b"\x0a" * 32), origin, log)
    assert notes.cosign(note, WITNESS, WITNESS_KEY, 1679315147) == spec_cosignature(
        note, WITNESS, WITNESS_KEY, 1679315147
    )
    assert notes.witness_verifier_key(WITNESS, WITNESS_KEY.public_key()) == spec_vkey(WITNESS, WITNESS_KEY, b"\x04")
    signed = notes.verify(
        note + spec_cosignature(note, WITNESS, WITNESS_KEY, 1679315147),
        log_key=(origin, log.public_key()),
        witnesses=dict([notes.parse_verifier_key(spec_vkey(WITNESS, WITNESS_KEY, b"\x04"))]),
    )
    assert signed.signers == {origin, WITNESS} and signed.cosigned_at == {WITNESS: 1679315147}
    # A cosignature over another body (the timestamp changed after signing) is a false signature, not noise.
    forged = spec_cosignature(note, WITNESS, WITNESS_KEY, 1679315147)
    raw = bytearray(base64.b64decode(forged.split(" ")[2]))
    raw[4:12] = (1679315148).to_bytes(8, "big")
    with pytest.raises(notes.CheckpointError):
        notes.verify(
            note + f"{DASH} {WITNESS} {base64.b64encode(bytes(raw)).decode()}\n",
            log_key=(origin, log.public_key()),
            witnesses={WITNESS: WITNESS_KEY.public_key()},
        )


def test_the_deployment_accepts_a_standard_cosignature(db: Session, witnessed_rt: Runtime) -> None:
    rt = witnessed_rt
    petition = factories.open_petition(db, rt)
    latest = signature_log.latest_checkpoint(db=db, petition_id=petition.id)
    line = spec_cosignature(latest.note, WITNESS, WITNESS_KEY, 1796000000).strip()  # type: ignore[union-attr]
    row = signature_log.cosign(db=db, rt=rt, petition_id=petition.id, size=latest.size, line=line)  # type: ignore[union-attr]
    assert row.witness == WITNESS
    note = signature_log.with_cosignatures(db, latest)  # type: ignore[arg-type]
    assert note.endswith(line + "\n")
    # The same line from a key the deployment does not know is refused, in words.
    stranger = spec_cosignature(latest.note, "stranger.example", Ed25519PrivateKey.generate(), 1796000000)  # type: ignore[union-attr]
    with pytest.raises(InvalidInput, match="not among the deployment's witnesses"):
        signature_log.cosign(db=db, rt=rt, petition_id=petition.id, size=latest.size, line=stranger.strip())  # type: ignore[union-attr]


def test_the_log_key_is_named_by_the_checkpoint_origin(db: Session, rt: Runtime, client) -> None:
    petition = factories.open_petition(db, rt)
    head = client.get(f"/api/v1/petitions/{petition.id}/log").json()
    origin = head["origin"]
    note = head["checkpoint"]
    assert note.split("\n\n", 1)[1].startswith(f"{DASH} {origin} ")
    assert head["log_key"].startswith(origin + "+")
    name, public = notes.parse_verifier_key(head["log_key"])
    assert notes.verify(note, log_key=(name, public)).checkpoint.origin == origin
    # The deployment's one key, pinned by its host name, still verifies every petition's log.
    assert notes.verify(note, log_key=notes.parse_verifier_key(signature_log.verifier_key(rt))).checkpoint.size == 1


def test_unknown_signature_lines_are_ignored_by_the_verifier() -> None:
    log = Ed25519PrivateKey.generate()
    origin = "petitions.example.org/petitions/42"
    issuing = blindrsa.PrivateKey.generate(1024)
    entries = [
        encode(
            {
                "kind": "petition",
                "petition": 42,
                "version": 1,
                "text_sha256": "ab" * 32,
                "key_id": issuing.public.key_id(),
            }
        ),
        encode({"kind": "signature", "visibility": "named", "commitment": secrets.token_hex(16)}),
    ]
    root = merkle.root_of([merkle.leaf_hash(entry) for entry in entries])
    note = notes.sign(notes.Checkpoint(origin=origin, size=2, root=root), origin, log)
    # A witness nobody configured, and a signature type this verifier does not know (an ML-DSA-sized line).
    note += spec_cosignature(note, "unknown.example/w", Ed25519PrivateKey.generate(), 1796000000)
    note += f"{DASH} pq.example/w {base64.b64encode(secrets.token_bytes(4 + 8 + 2420)).decode()}\n"
    report = check(
        entries=entries,
        checkpoints=[note],
        log_key=(origin, log.public_key()),
        issuing_key_spki=issuing.public.spki(),
        tokens_issued=0,
        petition_id=42,
    )
    assert report.ok, report.problems


def test_plain_witness_signatures_written_before_stay_readable() -> None:
    log = Ed25519PrivateKey.generate()
    host = "petitions.example.org"
    # A checkpoint as this project signed it before: the key named by the host, the witness's plain note line.
    note = notes.sign(notes.Checkpoint(origin=f"{host}/petitions/7", size=3, root=b"\x01" * 32), host, log)
    body = note.split("\n\n", 1)[0] + "\n"
    key_id = hashlib.sha256(WITNESS.encode() + b"\n\x01" + raw_public(WITNESS_KEY)).digest()[:4]
    plain = f"{DASH} {WITNESS} {base64.b64encode(key_id + WITNESS_KEY.sign(body.encode())).decode()}\n"
    signed = notes.verify(
        note + plain,
        log_key=(host, log.public_key()),
        witnesses=dict([notes.parse_verifier_key(spec_vkey(WITNESS, WITNESS_KEY, b"\x01"))]),
    )
    assert signed.signers == {host, WITNESS}
