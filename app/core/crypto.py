"""Sealing personal data at rest with AES-GCM under keys derived from the deployment secret.

Each ciphertext starts with the id of the key that sealed it, so keys can be rotated: new data is sealed
with the newest key and old data stays readable until it is re-sealed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core.security import Keyring

KEY_ID = b"k1"
NONCE_BYTES = 12


class Sealer:
    def __init__(self, keyring: Keyring) -> None:
        self._keys = {KEY_ID: AESGCM(keyring.key("pii-seal/k1"))}

    def seal(self, plaintext: str, *, context: str) -> bytes:
        """Encrypt `plaintext`; `context` (e.g. "signature-name:<petition id>") binds it to where it is stored."""
        nonce = os.urandom(NONCE_BYTES)
        return KEY_ID + nonce + self._keys[KEY_ID].encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, sealed: bytes, *, context: str) -> str:
        return self.opener(context=context)(sealed)

    def opener(self, *, context: str) -> Callable[[bytes], str]:
        """`open` for many values sealed in one context (a signer list): the context is encoded once."""
        associated = context.encode()
        keys = self._keys

        def open_one(sealed: bytes) -> str:
            key_id, nonce, ciphertext = sealed[:2], sealed[2:2 + NONCE_BYTES], sealed[2 + NONCE_BYTES:]
            return keys[key_id].decrypt(nonce, ciphertext, associated).decode()

        return open_one
