"""Linking a device: the wallet secret passes from a device that holds it (A) to a new one (B), end to end.

The protocol (docs: /wallet/link, app/anonymous/linking_client.py for both devices' half) keeps the server a
mailbox: A posts its ephemeral public key with two proofs made from a short code it shows the worker, B proves
it was shown the same code and posts its own key, A seals the secret to the key both devices derive, B opens it.
Without the code the server can neither answer A as B nor offer B a key of its own (each device checks the
other's proof); what it holds are public keys, proofs and one sealed box it cannot open.

Even so, nothing of a session is kept anywhere but in this server process's memory: not a table, a log line
or a Redis key, so no copy taken later dates who linked a device when. One session per account, replaced by a
new one, gone 10 minutes after it opened (by the app's clock), after B collects the secret, after A cancels, or
after the fifth wrong code. Each server process holds its own sessions: both devices must reach the process
that holds the account's session, so a deployment of several processes (docs/deploy.md) must send one
account's /api/v1/wallet/link requests to one process (nginx: `hash $cookie_undersigned_session consistent`).
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import N_

LIFETIME = timedelta(minutes=10)
MAX_WRONG_CODES = 5
KEY_LEN = 65  # an uncompressed P-256 point: 0x04 || x || y
PROOF_LEN = 32  # HMAC-SHA256
SEALED_LEN = 12 + 16 + 16  # IV || the 16-byte secret encrypted || the GCM tag

# Rate limits, per account (rt.limiter keys each action apart): a worker links a handful of devices, and five
# wrong codes already close a session.
OPEN_RULE = "10/hour"
ANSWER_RULE = "10/minute;30/hour"

NO_SESSION = N_("No device is showing a linking code for your account right now: the code expired (codes last "
                "10 minutes), was used, or was cancelled. Show a new code on the device that has your wallet.")
WRONG_CODE = N_("That is not the code your other device shows. Check it and type it again. Attempts left: {left}.")
TOO_MANY = N_("Too many wrong codes: start again on your other device.")
ALREADY_USED = N_("This code was already used by another device. Show a new code on the device that has your "
                  "wallet.")
NOT_ANSWERED = N_("No new device has answered this code yet, so there is nothing to seal the wallet to.")


class State(StrEnum):
    offered = "offered"
    answered = "answered"
    sealed = "sealed"


@dataclass(frozen=True)
class LinkSession:
    offer_key: bytes
    offer_proof: bytes
    code_proof: bytes
    expires_at: datetime
    state: State = State.offered
    answer_key: bytes | None = None
    answer_proof: bytes | None = None
    sealed: bytes | None = None
    wrong_codes: int = 0

    def expires_in(self, now: datetime) -> int:
        """Whole seconds left, rounded up: a device counting down never shows 0 while the code still works."""
        return max(0, -int(-(self.expires_at - now).total_seconds() // 1))


class LinkSessions:
    """The open linking sessions of this process, one per account id. Thread-safe: requests run in worker
    threads, and A's poll, B's answer and A's seal may arrive at once."""

    def __init__(self) -> None:
        self._sessions: dict[int, LinkSession] = {}
        self._lock = threading.Lock()

    def _current(self, account_id: int, now: datetime) -> LinkSession:
        """The account's open session; caller holds the lock. An expired one is dropped here."""
        session = self._sessions.get(account_id)
        if session is not None and now >= session.expires_at:
            del self._sessions[account_id]
            session = None
        if session is None:
            raise NotFound(NO_SESSION)
        return session

    def open(self, account_id: int, *, offer_key: bytes, offer_proof: bytes, code_proof: bytes,
             now: datetime) -> LinkSession:
        session = LinkSession(offer_key=offer_key, offer_proof=offer_proof, code_proof=code_proof,
                              expires_at=now + LIFETIME)
        with self._lock:
            self._sessions[account_id] = session  # replaces any open one: the old code stops working
        return session

    def get(self, account_id: int, *, now: datetime) -> LinkSession:
        with self._lock:
            return self._current(account_id, now)

    def answer(self, account_id: int, *, code_proof: bytes, answer_key: bytes, answer_proof: bytes,
               now: datetime) -> LinkSession:
        with self._lock:
            session = self._current(account_id, now)
            if session.state is not State.offered:
                raise Conflict(ALREADY_USED)
            if not hmac.compare_digest(session.code_proof, code_proof):
                wrong = session.wrong_codes + 1
                if wrong >= MAX_WRONG_CODES:
                    del self._sessions[account_id]
                    raise Conflict(TOO_MANY)
                self._sessions[account_id] = replace(session, wrong_codes=wrong)
                raise InvalidInput(WRONG_CODE.format(left=MAX_WRONG_CODES - wrong))
            session = replace(session, state=State.answered, answer_key=answer_key, answer_proof=answer_proof)
            self._sessions[account_id] = session
            return session

    def seal(self, account_id: int, *, sealed: bytes, now: datetime) -> LinkSession:
        with self._lock:
            session = self._current(account_id, now)
            if session.state is State.offered:
                raise Conflict(NOT_ANSWERED)
            if session.state is State.sealed:
                raise Conflict(ALREADY_USED)
            session = replace(session, state=State.sealed, sealed=sealed)
            self._sessions[account_id] = session
            return session

    def done(self, account_id: int, *, now: datetime) -> None:
        """B holds the secret: the session, its keys and the sealed box are dropped."""
        with self._lock:
            self._current(account_id, now)
            del self._sessions[account_id]

    def cancel(self, account_id: int) -> None:
        with self._lock:
            self._sessions.pop(account_id, None)

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()

    def __len__(self) -> int:
        return len(self._sessions)
