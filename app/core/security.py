"""Secrets derived from the deployment key, password hashing, one-time codes and CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from passlib.context import CryptContext

password_context = CryptContext(schemes=["argon2"], deprecated="auto")


def hash_password(password: str) -> str:
    return password_context.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if not password_hash:
        # Spend the same time as a real check so response time does not tell which accounts have passwords.
        password_context.dummy_verify()
        return False
    return password_context.verify(password, password_hash)


def password_needs_rehash(password_hash: str) -> bool:
    return password_context.needs_update(password_hash)


SESSION_COOKIE = "undersigned_session"


class Keyring:
    """Purpose-specific keys derived from the one deployment secret, so no key serves two purposes."""

    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key.encode()

    def key(self, purpose: str) -> bytes:
        return hmac.new(self._secret, f"undersigned/{purpose}".encode(), hashlib.sha256).digest()

    def keyed_hash(self, purpose: str, value: str) -> str:
        return hmac.new(self.key(purpose), value.encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, seed: str, session: str | None = None) -> str:
        """The token for this browser's seed and, once signed in, its session: a seed planted in the browser
        by someone else (a cookie set from a sibling site) is no use without the session id (issue #21)."""
        return self.keyed_hash("csrf", f"{seed}\n{token_digest(session)}" if session else seed)

    def csrf_valid(self, seed: str | None, token: str | None, session: str | None = None) -> bool:
        if not seed or not token:
            return False
        return hmac.compare_digest(self.csrf_token(seed, session).encode(), token.encode())


def new_token() -> str:
    """A random value for links and cookies: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_code() -> str:
    """A six-digit code a person can type from an email."""
    return f"{secrets.randbelow(1_000_000):06d}"


def token_digest(token: str) -> str:
    """What the database keeps of a link token or session id: a dump does not yield usable values."""
    return hashlib.sha256(token.encode()).hexdigest()
