"""Limits on a poll's cookie-less routes (issue #25): how often one credential may answer, or ask to exchange a
signer credential, in an hour.

The requests name no account and are not logged, so the only subject to count is the credential itself, and
each action counts apart (an answer's count says nothing of the same person's exchange). Counted like the
anonymous comments' limit (app/comments/anonymous.py), in this process's memory and never in Redis or the
account limiter's storage: a counter key there lives from its first hit, and its lifetime would date that
credential's first answer to the second (the operator holding the keys can hash a published credential), where
the batch keeps the hour. Here the window is the clock's hour, the same for every credential: memory holds, per
action and credential, a count for the current hour and nothing else, and all of it is dropped when the hour
turns. Credentials are counted only once their signature verifies, so a flood of made-up ones fills nothing.

Per process: behind a load balancer a credential may use the limit once in each process, which still bounds it.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime

from app.core.errors import RateLimited
from app.core.i18n import N_
from app.core.runtime import Runtime

WINDOW_SECONDS = 3600
# A person changes their mind a few times; a wallet retries a lost reply a few times. Well above either.
ANSWERS_PER_HOUR = 20
EXCHANGES_PER_HOUR = 10
ANSWER, EXCHANGE = "ballot-answer", "ballot-exchange"
RULES = {ANSWER: ANSWERS_PER_HOUR, EXCHANGE: EXCHANGES_PER_HOUR}
REFUSALS = {
    ANSWER: N_(
        "This credential has answered this poll many times in the last hour. Your last answer stands; "
        "to change it again, wait until the next hour."
    ),
    EXCHANGE: N_(
        "This signer credential has asked for this poll's credential many times in the last hour. "
        "Wait until the next hour, then try again."
    ),
}


class CredentialCounts:
    """Per action and credential, the attempts in the current clock hour; emptied when the hour turns."""

    def __init__(self) -> None:
        self._hour: int | None = None
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def take(self, *, action: str, subject: str, limit: int, now: datetime) -> bool:
        """Count one attempt; False (and nothing counted) when the hour's `limit` is used up."""
        hour = int(now.timestamp() // WINDOW_SECONDS)
        key = (action, hashlib.sha256(f"{action}/{subject}".encode()).hexdigest())
        with self._lock:
            if hour != self._hour:
                self._hour, self._counts = hour, {}
            used = self._counts.get(key, 0)
            if used >= limit:
                return False
            self._counts[key] = used + 1
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._counts)


def counts(rt: Runtime) -> CredentialCounts:
    return rt.part(CredentialCounts, CredentialCounts)


def hit(rt: Runtime, *, action: str, ballot_id: int, credential: str) -> None:
    """Count one `action` by this (verified) credential on this ballot; 429 in plain words over the limit."""
    now = rt.clock.now()
    if not counts(rt).take(action=action, subject=f"{ballot_id}/{credential}", limit=RULES[action], now=now):
        wait = WINDOW_SECONDS - int(now.timestamp()) % WINDOW_SECONDS
        raise RateLimited(REFUSALS[action], headers={"Retry-After": str(max(1, wait))})
