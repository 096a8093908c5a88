"""Checkpoints of a petition's log: the C2SP tlog-checkpoint text, signed as a C2SP signed note with Ed25519.

    <origin>\\n<tree size>\\n<base64 root hash>\\n
    \\n
    — <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\\n

The log signs with its key under a key name equal to the checkpoint's origin (one name per log, as
tlog-checkpoint asks); witnesses (a union, an outside group) add C2SP tlog-cosignature lines (`cosignature/v1`,
Ed25519 over "cosignature/v1\ntime <seconds>\n" + the body, with the timestamp before the signature) once they
have checked the checkpoint is consistent with the last one they saw. The key id is the first four bytes of
SHA-256(key name || 0x0A || type || public key): type 0x01 for note signatures, 0x04 for cosignatures.

Signature lines from keys a verifier does not know are ignored, as the signed-note specification requires.
Plain Ed25519 note signatures by a witness (what this project wrote before cosignature/v1) still verify.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = b"\x01"
COSIGNATURE_V1 = b"\x04"
DASH = "\u2014"


class CheckpointError(ValueError):
    """A note that is malformed, or whose signature does not verify."""


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public: Ed25519PublicKey, kind: bytes = ED25519) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + kind + _raw(public)).digest()[:4]


def verifier_key(name: str, public: Ed25519PublicKey, kind: bytes = ED25519) -> str:
    """The public form a verifier or witness is configured with: name+keyid+base64(type || key)."""
    return f"{name}+{key_id(name, public, kind).hex()}+{base64.b64encode(kind + _raw(public)).decode()}"


def witness_verifier_key(name: str, public: Ed25519PublicKey) -> str:
    """A witness's key as C2SP tlog-cosignature publishes it: type 0x04, cosignature/v1."""
    return verifier_key(name, public, COSIGNATURE_V1)


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    """A verifier key of type 0x01 (Ed25519 note signatures) or 0x04 (Ed25519 cosignature/v1)."""
    try:
        name, hex_id, encoded = text.strip().split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
        if raw[:1] not in (ED25519, COSIGNATURE_V1) or len(raw) != 33 or not name or any(c.isspace() for c in name):
            raise ValueError
        public = Ed25519PublicKey.from_public_bytes(raw[1:])
    except ValueError:
        raise CheckpointError("not a verifier key of the form name+keyid+base64key") from None
    if key_id(name, public, raw[:1]).hex() != hex_id:
        raise CheckpointError("the verifier key's id does not match its key")
    return name, public


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def signature_line(body: str, name: str, private: Ed25519PrivateKey) -> str:
    signature = private.sign(body.encode())
    return f"{DASH} {name} {base64.b64encode(key_id(name, private.public_key()) + signature).decode()}\n"


def sign(checkpoint: Checkpoint, name: str, private: Ed25519PrivateKey) -> str:
    body = checkpoint.body()
    return body + "\n" + signature_line(body, name, private)


@dataclass
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str
    signers: set[str] = field(default_factory=set)
    # For each witness whose cosignature/v1 verified: the time it says it saw this checkpoint (POSIX seconds).
    cosigned_at: dict[str, int] = field(default_factory=dict)


def cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def _witness_signature(
    name: str, public: Ed25519PublicKey, identifier: bytes, signature: bytes, body: str
) -> int | None:
    """The timestamp of a witness's valid cosignature/v1 (0 for a plain note signature); None if the line is not
    one of this key's (another key type, or a name shared by chance). Raises if it is this key's and is false."""
    try:
        if identifier == key_id(name, public, COSIGNATURE_V1) and len(signature) == 8 + 64:
            timestamp = int.from_bytes(signature[:8], "big")
            if timestamp >= 2**63:
                raise CheckpointError(f"the cosignature of {name} has an impossible time")
            public.verify(signature[8:], cosigned_message(body, timestamp))
            return timestamp
        if identifier == key_id(name, public) and len(signature) == 64:
            public.verify(signature, body.encode())
            return 0
    except InvalidSignature:
        raise CheckpointError(f"the signature of {name} does not verify") from None
    return None


def parse(note: str) -> tuple[Checkpoint, str, list[tuple[str, bytes, bytes]]]:
    """The checkpoint, its body text and its signature lines (name, key id, signature), unverified."""
    body, separator, signatures = note.partition("\n\n")
    if not separator:
        raise CheckpointError("a signed note has a blank line between its text and its signatures")
    body += "\n"
    lines = body.split("\n")
    if len(lines) < 4 or not lines[0] or "\n" in lines[0]:
        raise CheckpointError("a checkpoint is origin, size and root, one per line")
    try:
        size = int(lines[1])
        root = base64.b64decode(lines[2], validate=True)
    except ValueError:
        raise CheckpointError("the checkpoint's size or root is malformed") from None
    if size < 0 or len(root) != 32 or str(size) != lines[1]:
        raise CheckpointError("the checkpoint's size or root is malformed")
    found = []
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            raise CheckpointError("a signature line is '— name base64'")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except ValueError:
            raise CheckpointError("a signature is not base64") from None
        if len(raw) < 5:
            raise CheckpointError("a note signature is a 4-byte key id and a signature")
        found.append((parts[1], raw[:4], raw[4:]))
    return Checkpoint(origin=lines[0], size=size, root=root), body, found


def verify(
    note: str, *, log_key: tuple[str, Ed25519PublicKey], witnesses: dict[str, Ed25519PublicKey] | None = None
) -> SignedCheckpoint:
    """Check the log's signature (required) and any known witnesses' (unknown signers are ignored).

    The log signs under its origin as key name. `log_key` may name the origin itself or the deployment (the host
    whose one key signs every petition's log): either way the line must carry the origin's name and key id, or,
    for checkpoints signed before logs were named by origin, the deployment's."""
    checkpoint, body, signatures = parse(note)
    log_name, log_public = log_key
    log_names = {checkpoint.origin, log_name}
    signers: set[str] = set()
    cosigned_at: dict[str, int] = {}
    for name, identifier, signature in signatures:
        if name in log_names and identifier == key_id(name, log_public) and len(signature) == 64:
            try:
                log_public.verify(signature, body.encode())
            except InvalidSignature:
                raise CheckpointError("the log's signature does not verify") from None
            signers.add(log_name)
            continue
        public = (witnesses or {}).get(name)
        if public is None or name in log_names:
            continue
        timestamp = _witness_signature(name, public, identifier, signature, body)
        if timestamp is not None:
            signers.add(name)
            cosigned_at[name] = timestamp
    if log_name not in signers:
        raise CheckpointError("the checkpoint is not signed by the log's key")
    return SignedCheckpoint(checkpoint=checkpoint, note=note, signers=signers, cosigned_at=cosigned_at)


def cosign(note: str, name: str, private: Ed25519PrivateKey, timestamp: int | None = None) -> str:
    """A witness's C2SP cosignature/v1 line over the checkpoint's body at `timestamp` (POSIX seconds); the
    caller checked consistency first."""
    _checkpoint, body, _signatures = parse(note)
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = private.sign(cosigned_message(body, timestamp))
    raw = key_id(name, private.public_key(), COSIGNATURE_V1) + timestamp.to_bytes(8, "big") + signature
    return f"{DASH} {name} {base64.b64encode(raw).decode()}\n"


def plain_cosign(note: str, name: str, private: Ed25519PrivateKey) -> str:
    """A plain Ed25519 note signature by a witness: the format before cosignature/v1, still accepted."""
    _checkpoint, body, _signatures = parse(note)
    return signature_line(body, name, private)
