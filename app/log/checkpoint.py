"""Checkpoints of a petition's log: the C2SP tlog-checkpoint text, signed as a C2SP signed note with Ed25519.

    <origin>\\n<tree size>\\n<base64 root hash>\\n
    \\n
    — <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\\n

The log signs with its key; witnesses (a union, an outside group) add their own signature lines to the same
body once they have checked it is consistent with the last checkpoint they saw. The key id is the first four
bytes of SHA-256(key name || 0x0A || 0x01 || public key), as the signed-note specification defines it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = b"\x01"
DASH = "\u2014"


class CheckpointError(ValueError):
    """A note that is malformed, or whose signature does not verify."""


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + _raw(public)).digest()[:4]


def verifier_key(name: str, public: Ed25519PublicKey) -> str:
    """The public form a verifier or witness is configured with: name+keyid+base64(type || key)."""
    return f"{name}+{key_id(name, public).hex()}+{base64.b64encode(ED25519 + _raw(public)).decode()}"


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    try:
        name, hex_id, encoded = text.strip().split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
        if raw[:1] != ED25519 or len(raw) != 33:
            raise ValueError
        public = Ed25519PublicKey.from_public_bytes(raw[1:])
    except ValueError:
        raise CheckpointError("not a verifier key of the form name+keyid+base64key") from None
    if key_id(name, public).hex() != hex_id:
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
        if len(raw) != 4 + 64:
            raise CheckpointError("an Ed25519 note signature is a 4-byte key id and 64 bytes")
        found.append((parts[1], raw[:4], raw[4:]))
    return Checkpoint(origin=lines[0], size=size, root=root), body, found


def verify(note: str, *, log_key: tuple[str, Ed25519PublicKey],
           witnesses: dict[str, Ed25519PublicKey] | None = None) -> SignedCheckpoint:
    """Check the log's signature (required) and any known witnesses' (unknown signers are ignored)."""
    checkpoint, body, signatures = parse(note)
    known = {log_key[0]: log_key[1], **(witnesses or {})}
    signers: set[str] = set()
    for name, identifier, signature in signatures:
        public = known.get(name)
        if public is None or key_id(name, public) != identifier:
            continue
        try:
            public.verify(signature, body.encode())
        except InvalidSignature:
            raise CheckpointError(f"the signature of {name} does not verify") from None
        signers.add(name)
    if log_key[0] not in signers:
        raise CheckpointError("the checkpoint is not signed by the log's key")
    return SignedCheckpoint(checkpoint=checkpoint, note=note, signers=signers)


def cosign(note: str, name: str, private: Ed25519PrivateKey) -> str:
    """A witness's signature line over the same checkpoint body (the caller checked consistency first)."""
    _checkpoint, body, _signatures = parse(note)
    return signature_line(body, name, private)
