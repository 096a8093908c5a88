"""A witness written from the C2SP specifications alone (tlog-witness, tlog-cosignature, signed-note,
tlog-checkpoint, RFC 6962's consistency proofs), sharing no code with the project: the `SpecWitness` class below
imports nothing from `app`. It serves add-checkpoint over real HTTP; the deployment asks it to cosign its logs
(`undersigned witness --submit`), and keeps what it returns."""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
from collections.abc import Callable, Iterator

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tests.serving import serving

DASH = "\u2014"


class SpecWitness:
    """tlog-witness, as its text says: one public key per known origin, the latest cosigned (size, root) per
    origin, checked and updated atomically."""

    def __init__(self, name: str, key: Ed25519PrivateKey, logs: list[str], clock: Callable[[], int]) -> None:
        self.name, self.key, self.clock = name, key, clock
        self.logs: dict[str, tuple[bytes, Ed25519PublicKey]] = {}
        for vkey in logs:  # signed-note verifier keys: name+hex key id+base64(0x01 || key)
            origin, key_id, encoded = vkey.split("+", 2)
            raw = base64.b64decode(encoded)
            assert raw[0] == 1 and bytes.fromhex(key_id) == hashlib.sha256(origin.encode() + b"\n" + raw).digest()[:4]
            self.logs[origin] = (bytes.fromhex(key_id), Ed25519PublicKey.from_public_bytes(raw[1:]))
        self.state: dict[str, tuple[int, bytes]] = {}
        self.lock = threading.Lock()

    def vkey(self) -> str:
        public = b"\x04" + self.key.public_key().public_bytes_raw()
        key_id = hashlib.sha256(self.name.encode() + b"\n" + public).digest()[:4]
        return f"{self.name}+{key_id.hex()}+{base64.b64encode(public).decode()}"

    def add_checkpoint(self, body: bytes) -> tuple[int, str, bytes]:
        try:
            text = body.decode()
            head, note = text.split("\n\n", 1)
            lines = head.split("\n")
            if not lines[0].startswith("old ") or len(lines) > 64:
                raise ValueError
            old = int(lines[0][4:])
            proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
            checkpoint_body, signatures = note.split("\n\n", 1)
            origin, size_text, root_text = checkpoint_body.split("\n")[:3]
            size, root = int(size_text), base64.b64decode(root_text, validate=True)
        except (ValueError, UnicodeDecodeError):
            return 400, "text/plain", b"malformed request\n"
        if origin not in self.logs:
            return 404, "text/plain", b"unknown log\n"
        key_id, public = self.logs[origin]
        verified = False
        for line in signatures.splitlines():
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != DASH or parts[1] != origin:
                continue  # not the log's: ignored
            raw = base64.b64decode(parts[2])
            if raw[:4] != key_id or len(raw) != 68:
                continue
            try:
                public.verify(raw[4:], (checkpoint_body + "\n").encode())
                verified = True
            except InvalidSignature:
                continue
        if not verified:
            return 403, "text/plain", b"no trusted signature\n"
        if old > size:
            return 400, "text/plain", b"old size larger than the checkpoint\n"
        with self.lock:
            known_size, known_root = self.state.get(origin, (0, b""))
            if old != known_size:
                return 409, "text/x.tlog.size", f"{known_size}\n".encode()
            if old == size:
                if root != known_root:
                    return 409, "text/plain", b"a different root for the same size\n"
            elif old == 0:
                if proof:
                    return 422, "text/plain", b"the proof from size zero is empty\n"
            elif not consistent(old, size, known_root, root, proof):
                return 422, "text/plain", b"not consistent\n"
            self.state[origin] = (size, root)
        timestamp = self.clock()
        message = f"cosignature/v1\ntime {timestamp}\n{checkpoint_body}\n".encode()
        key_id = hashlib.sha256(self.name.encode() + b"\n\x04" + self.key.public_key().public_bytes_raw()).digest()[:4]
        line = f"{DASH} {self.name} {base64.b64encode(key_id + timestamp.to_bytes(8, 'big') + self.key.sign(message)).decode()}\n"
        return 200, "text/plain", line.encode()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def consistent(first: int, second: int, first_hash: bytes, second_hash: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 2.1.4.2 (the RFC 6962 proof), step by step."""
    if not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_hash] + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_hash and sr == second_hash and sn == 0


@pytest.fixture
def spec_server() -> Iterator[tuple[str, dict[str, SpecWitness]]]:
    """A real HTTP server; the witness is put in the dict once the test knows the log's key."""
    holder: dict[str, SpecWitness] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.path != "/w1/add-checkpoint":
                status, kind, answer = 404, "text/plain", b"not found\n"
            else:
                status, kind, answer = holder["witness"].add_checkpoint(body)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with serving(server):
        yield f"http://127.0.0.1:{server.server_address[1]}/w1", holder


# The project's side, below: the deployment asks, keeps the cosignature, and verify counts it.

from fastapi import FastAPI
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.log import checkpoint as notes
from app.log import service as signature_log
from app.log import witness as witnessing
from tests import factories
from tests.conftest import Browser, build_test_app, make_settings, sign_in_as

pytestmark = pytest.mark.one_database

WITNESS_KEY = Ed25519PrivateKey.generate()
WITNESS_NAME = "witness.example.net/w1"


def witness_vkey() -> str:
    return SpecWitness(WITNESS_NAME, WITNESS_KEY, [], lambda: 0).vkey()


@pytest.fixture
def app(database_url: str, connection: Connection, clock: FrozenClock) -> FastAPI:
    return build_test_app(make_settings(database_url, log_witnesses=[witness_vkey()]), connection, clock)


def test_a_witness_built_from_the_spec_cosigns_through_tlog_witness(
    new_browser: Callable[[], Browser], db: Session, rt: Runtime, sessions: sessionmaker[Session], spec_server, client
) -> None:
    url, holder = spec_server
    petition = factories.open_petition(db, rt)
    origin = signature_log.origin(rt, petition.id)
    holder["witness"] = SpecWitness(
        WITNESS_NAME, WITNESS_KEY, [signature_log.log_verifier_key(rt, petition.id)], clock=lambda: 1796000000
    )

    first = witnessing.request_cosignature(sessions=sessions, rt=rt, petition_id=petition.id, witness_url=url)
    assert first.witnesses == [WITNESS_NAME] and first.size == 1
    assert holder["witness"].state[origin][0] == 1

    # More signatures, a new checkpoint: the witness answers 409 with the size it knows, gets the consistency
    # proof from there, checks it with its own code, and cosigns again.
    for _ in range(4):
        sign_in_as(new_browser(), db, factories.worker(db)).api(
            "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}
        )
        assert signature_log.flush(sessions=sessions, rt=rt) == 1
    second = witnessing.request_cosignature(sessions=sessions, rt=rt, petition_id=petition.id, witness_url=url)
    assert second.size == 5 and holder["witness"].state[origin][0] == 5

    head = client.get(f"/api/v1/petitions/{petition.id}/log").json()
    assert head["witnesses"] == [WITNESS_NAME]
    signed = notes.verify(
        head["checkpoint"],
        log_key=notes.parse_verifier_key(head["log_key"]),
        witnesses=dict([notes.parse_verifier_key(witness_vkey())]),
    )
    assert signed.cosigned_at == {WITNESS_NAME: 1796000000}


def test_a_witness_that_saw_another_tree_refuses_and_the_deployment_says_so(
    db: Session, rt: Runtime, sessions: sessionmaker[Session], spec_server
) -> None:
    url, holder = spec_server
    petition = factories.open_petition(db, rt)
    origin = signature_log.origin(rt, petition.id)
    witness = SpecWitness(
        WITNESS_NAME, WITNESS_KEY, [signature_log.log_verifier_key(rt, petition.id)], clock=lambda: 1796000000
    )
    witness.state[origin] = (1, b"\x00" * 32)  # it cosigned another root of size 1 before: a fork
    holder["witness"] = witness
    with pytest.raises(witnessing.WitnessError, match="forked"):
        witnessing.request_cosignature(sessions=sessions, rt=rt, petition_id=petition.id, witness_url=url)
    # A witness that does not know the log is told which key to add.
    holder["witness"] = SpecWitness(WITNESS_NAME, WITNESS_KEY, [], clock=lambda: 1796000000)
    with pytest.raises(witnessing.WitnessError, match="does not know this log's origin"):
        witnessing.request_cosignature(sessions=sessions, rt=rt, petition_id=petition.id, witness_url=url)


def test_the_projects_witness_serves_tlog_witness_for_a_log(
    db: Session, rt: Runtime, sessions: sessionmaker[Session], new_browser: Callable[[], Browser], tmp_path
) -> None:
    """`undersigned witness --serve`: the same protocol from the other side, for this deployment's logs or
    another's; here it witnesses a petition's log as the spec-built witness did."""
    petition = factories.open_petition(db, rt)
    witness = witnessing.Witness(
        name=WITNESS_NAME,
        key=WITNESS_KEY,
        logs=[signature_log.log_verifier_key(rt, petition.id)],
        state_file=tmp_path / "witnessed.json",
        clock=lambda: 1796000000,
    )
    server = witnessing.serve(witness, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.server_address[1]}/w1"
    with serving(server):
        assert (
            witnessing.request_cosignature(sessions=sessions, rt=rt, petition_id=petition.id, witness_url=url).size == 1
        )
        sign_in_as(new_browser(), db, factories.worker(db)).api(
            "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}
        )
        assert signature_log.flush(sessions=sessions, rt=rt) == 1
        assert (
            witnessing.request_cosignature(sessions=sessions, rt=rt, petition_id=petition.id, witness_url=url).size == 2
        )
        assert '"size": 2' in (tmp_path / "witnessed.json").read_text()  # persisted before it answered

        # What the protocol says for the other cases: an unknown origin, a wrong old size, a bad proof.
        note = signature_log.latest_checkpoint(db=db, petition_id=petition.id).note  # type: ignore[union-attr]
        other = factories.open_petition(db, rt)
        other_note = signature_log.latest_checkpoint(db=db, petition_id=other.id).note  # type: ignore[union-attr]
        assert witness.add_checkpoint(witnessing.request_body(0, [], other_note))[0] == 404
        assert witness.add_checkpoint(witnessing.request_body(1, [], note))[:2] == (409, "text/x.tlog.size")
        assert witness.add_checkpoint(witnessing.request_body(2, [b"\x00" * 32], note))[0] == 200  # same size, root
        assert witness.add_checkpoint(witnessing.request_body(3, [], note))[0] == 400
        forged = notes.sign(
            notes.Checkpoint(origin=signature_log.origin(rt, petition.id), size=2, root=b"\x07" * 32),
            "someone",
            Ed25519PrivateKey.generate(),
        )
        assert witness.add_checkpoint(witnessing.request_body(2, [], forged))[0] == 403
