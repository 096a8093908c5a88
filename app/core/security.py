"""Secrets derived from the deployment key, password hashing, one-time codes and CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from passlib.context import CryptContext

# Argon2id at passlib's defaults, written down so a test can hold them: 64 MiB, 3 passes, 4 lanes (0.1 to 0.4 s
# a hash on our 2-core machine).
ARGON2_COST = {"memory_cost": 65536, "rounds": 3, "parallelism": 4}
# The same algorithm at its floor, for the test suite only: its users' passwords protect nothing, and hashing
# them at full cost took 25 s per database. Production never calls `use_password_cost`.
ARGON2_TEST_COST = {"memory_cost": 8, "rounds": 1, "parallelism": 1}


def _password_context(cost: dict[str, int]) -> CryptContext:
    settings = {f"argon2__{name}": value for name, value in cost.items()}
    return CryptContext(schemes=["argon2"], deprecated="auto", **settings)


password_context = _password_context(ARGON2_COST)


def use_password_cost(cost: dict[str, int]) -> None:
    """Hash (and rehash) passwords at `cost` from now on in this process: the test suite's conftest sets
    ARGON2_TEST_COST; hashes already made at another cost still verify, as each carries its own parameters."""
    global password_context
    password_context = _password_context(cost)


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
