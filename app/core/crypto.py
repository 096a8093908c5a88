"""Personal data at rest: sealed with AES-GCM, found again through keyed blind indexes.

Each ciphertext starts with the 2-byte id of the key that sealed it, so keys can be rotated: new data is sealed
with the current key, older data stays readable under the keys still configured until `undersigned keys
rotate` re-seals it. The associated data names where a value is stored ("users.email"), so a ciphertext
copied into another column does not open.

The keys live in the process, never in the database: a dump holds ciphertext and HMAC digests only. Columns
declared `Sealed(...)` are sealed and opened by SQLAlchemy itself, so services read `user.email` as text; SQL
cannot compare them (the comparator refuses), look-ups go through `blind_index`.

The key registry is process-wide because SQLAlchemy's column types have no access to the application. Every
runtime built in the process adds its keys (tests build several); opening tries each key filed under the
ciphertext's id, look-ups compare against the digests under every index key known, and the runtime built last
seals and indexes. A server process builds one runtime; only tests build runtimes with different secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

from app.core.security import Keyring

NONCE_BYTES = 12
KEY_ID_BYTES = 2
# The key every deployment has without configuring any: derived from the deployment secret.
DERIVED_KEY_ID = "k1"
KEY_ID = re.compile(r"[a-z0-9]{2}")


class SealingError(ValueError):
    """A value that no configured key opens: the keys changed, or the data was altered."""


@dataclass(frozen=True)
class SealingKey:
    key_id: str
    key: bytes

    @property
    def prefix(self) -> bytes:
        return self.key_id.encode()


def parse_keys(configured: str) -> list[SealingKey]:
    """`id:base64key,id:base64key` (the first seals); ids are two characters a-z0-9, keys 32 bytes."""
    keys: list[SealingKey] = []
    for part in (item.strip() for item in configured.split(",")):
        if not part:
            continue
        key_id, separator, encoded = part.partition(":")
        if not separator or not KEY_ID.fullmatch(key_id):
            raise ValueError("each PII key is written id:base64key, with an id of two characters a-z or 0-9")
        if key_id == DERIVED_KEY_ID:
            raise ValueError(f"the PII key id {DERIVED_KEY_ID} is the key derived from the secret key: choose another")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise ValueError(f"the PII key {key_id} is not base64") from None
        if len(key) != 32:
            raise ValueError(f"the PII key {key_id} must be 32 bytes (AES-256), not {len(key)}")
        if any(existing.key_id == key_id for existing in keys):
            raise ValueError(f"the PII key id {key_id} is given twice")
        keys.append(SealingKey(key_id, key))
    if not keys:
        raise ValueError("no PII key given")
    return keys


def generate_key(key_id: str) -> str:
    if not KEY_ID.fullmatch(key_id):
        raise ValueError("a key id is two characters a-z or 0-9")
    if key_id == DERIVED_KEY_ID:
        raise ValueError(f"{DERIVED_KEY_ID} is the key derived from the secret key: choose another id, like k2")
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def deployment_keys(keyring: Keyring, configured: str | None) -> list[SealingKey]:
    """The configured keys (the first seals), then the secret-derived key so data sealed before keys were
    configured stays readable until it is rotated."""
    keys = parse_keys(configured) if configured else []
    return [*keys, SealingKey(DERIVED_KEY_ID, keyring.key(f"pii-seal/{DERIVED_KEY_ID}"))]


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ciphers: dict[bytes, list[AESGCM]] = {}
        self._seen: set[tuple[str, bytes]] = set()
        self._current: tuple[bytes, AESGCM] | None = None
        self._index_keys: tuple[bytes, ...] = ()

    def install(self, keys: list[SealingKey], index_key: bytes) -> None:
        with self._lock:
            for key in keys:
                if (key.key_id, key.key) not in self._seen:
                    self._seen.add((key.key_id, key.key))
                    self._ciphers.setdefault(key.prefix, []).append(AESGCM(key.key))
            self._current = (keys[0].prefix, AESGCM(keys[0].key))
            # Swapped whole, so a look-up in another thread never sees a half-changed list.
            self._index_keys = (index_key, *(key for key in self._index_keys if key != index_key))

    @property
    def current_id(self) -> str:
        return self._require()[0].decode()

    def _require(self) -> tuple[bytes, AESGCM]:
        if self._current is None:
            raise RuntimeError("no PII keys are installed in this process: build the runtime first")
        return self._current

    def seal(self, plaintext: str, associated: bytes) -> bytes:
        prefix, cipher = self._require()
        nonce = os.urandom(NONCE_BYTES)
        return prefix + nonce + cipher.encrypt(nonce, plaintext.encode(), associated)

    def open(self, sealed: bytes, associated: bytes) -> str:
        prefix, nonce, ciphertext = (
            sealed[:KEY_ID_BYTES],
            sealed[KEY_ID_BYTES : KEY_ID_BYTES + NONCE_BYTES],
            sealed[KEY_ID_BYTES + NONCE_BYTES :],
        )
        for cipher in reversed(self._ciphers.get(prefix, ())):
            try:
                return cipher.decrypt(nonce, ciphertext, associated).decode()
            except InvalidTag:
                continue
        raise SealingError(f"no configured key opens this value (key id {prefix.decode(errors='replace')!r})")

    def index(self, purpose: str, value: str) -> str:
        return self.indexes(purpose, value)[0]

    def indexes(self, purpose: str, value: str) -> list[str]:
        index_keys = self._index_keys
        if not index_keys:
            raise RuntimeError("no PII keys are installed in this process: build the runtime first")
        message = f"{purpose}:{value}".encode()
        return [hmac.new(key, message, hashlib.sha256).hexdigest() for key in index_keys]


_registry = _Registry()


def install(keyring: Keyring, configured: str | None) -> None:
    _registry.install(deployment_keys(keyring, configured), keyring.key("pii-index"))


def current_key_id() -> str:
    return _registry.current_id


def key_id_of(sealed: bytes) -> str:
    return sealed[:KEY_ID_BYTES].decode(errors="replace")


def seal(plaintext: str, *, context: str) -> bytes:
    return _registry.seal(plaintext, context.encode())


def open_sealed(sealed: bytes, *, context: str) -> str:
    return _registry.open(bytes(sealed), context.encode())


def blind_index(purpose: str, value: str) -> str:
    """The keyed digest stored beside a sealed value so it can be found by equality (the current index key)."""
    return _registry.index(purpose, value)


def blind_indexes(purpose: str, value: str) -> list[str]:
    """The digests of `value` under every index key this process knows: what a look-up compares against."""
    return _registry.indexes(purpose, value)


class Sealer:
    """Sealing for values stored outside `Sealed` columns (signers' names per petition, issuing keys)."""

    def __init__(self, keyring: Keyring, configured: str | None = None) -> None:
        install(keyring, configured)

    def seal(self, plaintext: str, *, context: str) -> bytes:
        """Encrypt `plaintext`; `context` (e.g. "signature-name:<petition id>") binds it to where it is stored."""
        return seal(plaintext, context=context)

    def open(self, sealed: bytes, *, context: str) -> str:
        return open_sealed(sealed, context=context)

    def opener(self, *, context: str) -> Callable[[bytes], str]:
        """`open` for many values sealed in one context (a signer list): the context is encoded once."""
        associated = context.encode()
        return lambda sealed: _registry.open(bytes(sealed), associated)


# Comparisons that make sense on a sealed column; any other operator would compare ciphertexts and silently
# match nothing, so it is refused when the statement is built. (ORDER BY and SQL functions on a sealed column
# are not caught here: they order or transform ciphertext. Order and filter in Python after opening.)
_ALLOWED_OPERATORS = {operators.is_, operators.is_not}


class Sealed(TypeDecorator[str]):
    """A text column stored sealed: `Sealed("users.email")`, the argument being the associated data."""

    impl = LargeBinary
    cache_ok = True

    class comparator_factory(LargeBinary.Comparator):
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if op not in _ALLOWED_OPERATORS:
                raise TypeError("a sealed column cannot be compared in SQL: look it up through its blind index")
            return super().operate(op, *other, **kwargs)

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Any) -> bytes | None:
        return None if value is None else seal(value, context=self.context)

    def process_result_value(self, value: bytes | None, dialect: Any) -> str | None:
        return None if value is None else open_sealed(value, context=self.context)
