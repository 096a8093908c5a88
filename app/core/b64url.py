"""Base64url without padding: how tokens, keys and log entries travel between wallets, the API and verifiers."""

from __future__ import annotations

import base64

# What the JSON APIs take for a binary field (a Pydantic `pattern`): base64url, with or without padding after at
# least one character ('=' alone decoded to no bytes at all). `decode` then refuses what is not whole base64url.
PATTERN = r"^[A-Za-z0-9_-]+={0,2}$"
ON_INPUT = "base64url (RFC 4648 section 5), padding optional"


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(text: str) -> bytes:
    """Padding optional; raises ValueError (binascii.Error) for text that is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
