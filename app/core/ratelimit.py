"""Rate limits per account and per address (never per IP: a whole company shares a few egress addresses)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import limits.errors
import redis.exceptions
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from app.core.errors import RateLimited, Unavailable
from app.core.i18n import N_
from app.core.security import Keyring

# Redis (where several processes keep their limits) cannot be reached. Going on without counting would open
# sign-in codes and passwords to guessing for as long as the outage lasts, so the action is refused, in words.
STORE_DOWN = N_(
    "Undersigned cannot check its limits on attempts for a moment, so nothing was done. Please try again in a minute."
)


@contextmanager
def store_reachable(message: str = STORE_DOWN) -> Iterator[None]:
    """Redis (the limits' store, or another kept there) unreachable, timing out or holding a lock too long: 503
    with Retry-After and `message`, in place of the client library's error."""
    try:
        yield
    except (redis.exceptions.RedisError, limits.errors.StorageError):
        raise Unavailable(message, headers={"Retry-After": "60"}) from None


@lru_cache(maxsize=64)
def _parsed(rule: str) -> tuple[RateLimitItem, ...]:
    """Rules come from settings, so there are few of them: each is parsed once."""
    return tuple(parse_many(rule))


class RateLimiter:
    def __init__(self, *, storage_url: str | None, keyring: Keyring) -> None:
        self._limiter = FixedWindowRateLimiter(storage_from_string(storage_url or "memory://"))
        self._keyring = keyring

    def hit(self, *, action: str, subject: str, rule: str) -> None:
        """Count one attempt at `action` by `subject` (an address or account); refuse when over the rule."""
        if self.count(action=action, subject=subject, rule=rule):
            self.refuse(action=action, subject=subject, rule=rule)

    def count(self, *, action: str, subject: str, rule: str) -> bool:
        """Count one event (a failed sign-in, say) without refusing; return whether it went over the rule."""
        key = self._key(action, subject)
        over = False
        with store_reachable():
            for item in _parsed(rule):
                over = not self._limiter.hit(item, action, key) or over
        return over

    def exceeded(self, *, action: str, subject: str, rule: str) -> bool:
        """Whether `subject` has used up the rule, counting nothing."""
        key = self._key(action, subject)
        with store_reachable():
            return any(not self._limiter.test(item, action, key) for item in _parsed(rule))

    def refuse(self, *, action: str, subject: str, rule: str) -> None:
        """Raise RateLimited, saying when the last used-up window of the rule opens again."""
        key = self._key(action, subject)
        with store_reachable():
            items = [item for item in _parsed(rule) if not self._limiter.test(item, action, key)] or _parsed(rule)
            reset_at = max(self._limiter.get_window_stats(item, action, key)[0] for item in items)
        raise RateLimited(
            N_("Too many attempts. Please wait a little and try again."),
            headers={"Retry-After": str(max(1, int(reset_at - time.time())))},
        )

    def refuse_if_exceeded(self, *, action: str, subject: str, rule: str) -> None:
        if self.exceeded(action=action, subject=subject, rule=rule):
            self.refuse(action=action, subject=subject, rule=rule)

    def _key(self, action: str, subject: str) -> str:
        # The storage (memory or Redis) sees a keyed hash, never the address itself, and each action hashes with
        # a key of its own: with one hash per account, Redis alone lined up a person's comment, signing and token
        # counters (and the keys' lifetimes dated each first hit). The key `limits` stores is
        # `LIMITS:LIMITER/<action>/<this hash>/<rule>`: nothing else about the subject.
        return self._keyring.keyed_hash(f"rate-limit/{action}", subject.lower())

    def reset(self) -> None:
        self._limiter.storage.reset()
