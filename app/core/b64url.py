"""Base64url without padding: how tokens, keys and log entries travel between wallets, the API and verifiers."""

from __future__ import annotations

import base64


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(text: str) -> bytes:
    """Padding optional; raises ValueError (binascii.Error) for text that is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
