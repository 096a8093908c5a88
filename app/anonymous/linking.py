"""Linking a device: the wallet secret passes from a device that holds it (A) to a new one (B), end to end.

The protocol (docs: /wallet/link, app/clients/linking.py for both devices' half) keeps the server a
mailbox: A posts its ephemeral public key with two proofs made from a short code it shows the worker, B proves
it was shown the same code and posts its own key, A seals the secret to the key both devices derive, B opens it.
Without the code the server can neither answer A as B nor offer B a key of its own (each device checks the
other's proof); what it holds are public keys, proofs and one sealed box it cannot open.

Even so, a session is never written to a table or a log line, so no copy of the database or the logs dates who
linked a device when. One session per account, replaced by a new one, gone at most 10 minutes after it opened (by
the app's clock: the deadline is kept to the minute, rounded down, so a code never outlives the "10 minutes" the
page promises), after B collects the secret, after A cancels, or after the fifth wrong code. When B collects the
secret (/done), all that stays is a marker with no key, proof or box in it, state "done", shown once to A's next
look and gone within two minutes: A says "Linked." only then, never on a session that merely vanished.

Where it is held: with Redis configured (a deployment of several processes, docs/deploy.md), in Redis, so that
both devices reach the same session whichever process answers them; under a keyed hash of the account (a key
of this action's own, like the rate limits), with a lifetime of the session's, so a copy of Redis taken while
it is open shows that some account is linking a device, as the "wallet-link-open" rate-limit counter beside it
already does, and nothing more: public keys, proofs and a box neither the server nor Redis can open. Without
Redis (one process: `make run`), in this process's memory.
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum

import redis

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.core.security import Keyring

LIFETIME = timedelta(minutes=10)
DONE_LIFETIME = timedelta(minutes=1)  # the "done" marker: A polls every second or two, so this is ample
MAX_WRONG_CODES = 5
KEY_LEN = 65  # an uncompressed P-256 point: 0x04 || x || y
PROOF_LEN = 32  # HMAC-SHA256
SEALED_LEN = 12 + 16 + 16  # IV || the 16-byte secret encrypted || the GCM tag

# Rate limits, per account (rt.limiter keys each action apart): a worker links a handful of devices, and five
# wrong codes already close a session.
OPEN_RULE = "10/hour"
ANSWER_RULE = "10/minute;30/hour"

NO_SESSION = N_(
    "No device is showing a linking code for your account right now: the code expired (codes last "
    "10 minutes), was used, or was cancelled. Show a new code on the device that has your wallet."
)
WRONG_CODE = N_("That is not the code your other device shows. Check it and type it again. Attempts left: %(left)s.")
TOO_MANY = N_("Too many wrong codes: start again on your other device.")
ALREADY_USED = N_("This code was already used by another device. Show a new code on the device that has your wallet.")
NOT_SEALED = N_("Your other device has not sent the wallet yet, so there is nothing to collect.")
NOT_ANSWERED = N_("No new device has answered this code yet, so there is nothing to seal the wallet to.")


class State(StrEnum):
    offered = "offered"
    answered = "answered"
    sealed = "sealed"
    done = "done"  # B collected the secret: a marker with nothing in it but this state, read once by A


def _minute_down(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _minute_up(moment: datetime) -> datetime:
    floor = _minute_down(moment)
    return floor if floor == moment else floor + timedelta(minutes=1)


@dataclass(frozen=True)
class LinkSession:
    expires_at: datetime  # to the minute
    offer_key: bytes | None = None  # None only in the "done" marker
    offer_proof: bytes | None = None
    code_proof: bytes | None = None
    state: State = State.offered
    answer_key: bytes | None = None
    answer_proof: bytes | None = None
    sealed: bytes | None = None
    wrong_codes: int = 0

    def expires_in(self, now: datetime) -> int:
        """Whole seconds left, rounded up: a device counting down never shows 0 while the code still works."""
        return max(0, -int(-(self.expires_at - now).total_seconds() // 1))


def _dump(session: LinkSession) -> str:
    return json.dumps(
        {
            name: base64.b64encode(value).decode()
            if isinstance(value, bytes)
            else value.isoformat()
            if isinstance(value, datetime)
            else value
            for name, value in asdict(session).items()
        }
    )


def _load(raw: bytes | str) -> LinkSession:
    stored = json.loads(raw)
    values: dict[str, object] = {}
    for field in fields(LinkSession):
        value = stored.get(field.name)
        if value is not None and field.name in (
            "offer_key",
            "offer_proof",
            "code_proof",
            "answer_key",
            "answer_proof",
            "sealed",
        ):
            value = base64.b64decode(value)
        elif field.name == "expires_at":
            value = datetime.fromisoformat(value)
        elif field.name == "state":
            value = State(value)
        values[field.name] = value
    return LinkSession(**values)  # type: ignore[arg-type]


class MemoryStore:
    """One process's sessions: enough for `make run` and for a deployment of one process."""

    def __init__(self) -> None:
        self._sessions: dict[int, LinkSession] = {}
        self._lock = threading.Lock()

    @contextmanager
    def locked(self, account_id: int) -> Iterator[None]:
        with self._lock:
            yield

    def purge(self, now: datetime) -> None:
        """Every expired session goes, whoever it belongs to: one never asked about again leaves no trace."""
        for account_id in [key for key, session in self._sessions.items() if now >= session.expires_at]:
            del self._sessions[account_id]

    def load(self, account_id: int) -> LinkSession | None:
        return self._sessions.get(account_id)

    def save(self, account_id: int, session: LinkSession) -> None:
        self._sessions[account_id] = session

    def delete(self, account_id: int) -> None:
        self._sessions.pop(account_id, None)

    def clear(self) -> None:
        self._sessions.clear()

    def count(self) -> int:
        return len(self._sessions)


class RedisStore:
    """Sessions every process of a deployment sees. A short Redis lock per account makes each step (answer,
    seal, done) one compare-and-set across processes, as the memory store's lock does within one."""

    PREFIX = "undersigned:wallet-link:"

    def __init__(self, url: str, keyring: Keyring) -> None:
        self._redis = redis.Redis.from_url(url)
        self._keyring = keyring

    def _key(self, account_id: int) -> str:
        return self.PREFIX + self._keyring.keyed_hash("wallet-link", str(account_id))

    @contextmanager
    def locked(self, account_id: int) -> Iterator[None]:
        with self._redis.lock(self._key(account_id) + ":lock", timeout=10, blocking_timeout=10):
            yield

    def load(self, account_id: int) -> LinkSession | None:
        raw = self._redis.get(self._key(account_id))
        return None if raw is None else _load(raw)

    def purge(self, now: datetime) -> None:
        """Redis drops every session by its own key's lifetime (save)."""

    def save(self, account_id: int, session: LinkSession) -> None:
        # Redis drops it a minute after its lifetime, at a whole minute of real time, so the key's lifetime dates
        # the session no finer than the session itself; the app's clock decides when it expires.
        whole_minute = -(-int(time.time()) // 60) * 60
        self._redis.set(
            self._key(account_id),
            _dump(session),
            exat=whole_minute + int((LIFETIME + timedelta(minutes=1)).total_seconds()),
        )

    def delete(self, account_id: int) -> None:
        self._redis.delete(self._key(account_id))

    def _keys(self) -> list[bytes]:
        return [key for key in self._redis.scan_iter(match=self.PREFIX + "*") if not key.endswith(b":lock")]

    def clear(self) -> None:
        for key in self._keys():
            self._redis.delete(key)

    def count(self) -> int:
        return len(self._keys())


class LinkSessions:
    """The open linking sessions, one per account id. Each step holds the account's lock: A's poll, B's answer
    and A's seal may arrive at once, in threads of one process or in several processes."""

    def __init__(self, *, redis_url: str | None = None, keyring: Keyring | None = None) -> None:
        if redis_url and keyring is None:
            raise ValueError("sessions in Redis are keyed with the deployment's keyring")
        self._store: MemoryStore | RedisStore = (
            RedisStore(redis_url, keyring) if redis_url and keyring else MemoryStore()
        )

    def _current(self, account_id: int, now: datetime) -> LinkSession:
        """The account's open session; caller holds the lock. Expired ones (every account's) are dropped here."""
        self._store.purge(now)
        session = self._store.load(account_id)
        if session is not None and now >= session.expires_at:
            self._store.delete(account_id)
            session = None
        if session is None:
            raise NotFound(NO_SESSION)
        return session

    def open(
        self, account_id: int, *, offer_key: bytes, offer_proof: bytes, code_proof: bytes, now: datetime
    ) -> LinkSession:
        session = LinkSession(
            offer_key=offer_key, offer_proof=offer_proof, code_proof=code_proof, expires_at=_minute_down(now + LIFETIME)
        )
        with self._store.locked(account_id):
            self._store.purge(now)
            self._store.save(account_id, session)  # replaces any open one: the old code stops working
        return session

    def get(self, account_id: int, *, now: datetime) -> LinkSession:
        """The account's session as it stands; the "done" marker is shown once, then gone."""
        with self._store.locked(account_id):
            session = self._current(account_id, now)
            if session.state is State.done:
                self._store.delete(account_id)
            return session

    def answer(
        self, account_id: int, *, code_proof: bytes, answer_key: bytes, answer_proof: bytes, now: datetime
    ) -> LinkSession:
        with self._store.locked(account_id):
            session = self._current(account_id, now)
            if session.state is not State.offered:
                raise Conflict(ALREADY_USED)
            if not hmac.compare_digest(session.code_proof or b"", code_proof):
                wrong = session.wrong_codes + 1
                if wrong >= MAX_WRONG_CODES:
                    self._store.delete(account_id)
                    raise Conflict(TOO_MANY)
                self._store.save(account_id, replace(session, wrong_codes=wrong))
                raise InvalidInput(Message(WRONG_CODE, left=MAX_WRONG_CODES - wrong))
            session = replace(session, state=State.answered, answer_key=answer_key, answer_proof=answer_proof)
            self._store.save(account_id, session)
            return session

    def seal(self, account_id: int, *, sealed: bytes, now: datetime) -> LinkSession:
        with self._store.locked(account_id):
            session = self._current(account_id, now)
            if session.state is State.offered:
                raise Conflict(NOT_ANSWERED)
            if session.state is not State.answered:
                raise Conflict(ALREADY_USED)
            session = replace(session, state=State.sealed, sealed=sealed)
            self._store.save(account_id, session)
            return session

    def done(self, account_id: int, *, now: datetime) -> None:
        """B holds the secret: the session, its keys and the sealed box are dropped, and only a marker that says
        so stays, for A's next look (A then says "Linked.")."""
        with self._store.locked(account_id):
            session = self._current(account_id, now)
            if session.state is State.done:
                raise NotFound(NO_SESSION)
            if session.state is not State.sealed:
                raise Conflict(NOT_SEALED)
            self._store.save(account_id, LinkSession(expires_at=_minute_up(now + DONE_LIFETIME), state=State.done))

    def cancel(self, account_id: int, *, now: datetime | None = None) -> None:
        with self._store.locked(account_id):
            if now is not None:
                self._store.purge(now)
            self._store.delete(account_id)

    def clear(self) -> None:
        self._store.clear()

    def __len__(self) -> int:
        return self._store.count()


def link_sessions(rt: Runtime) -> LinkSessions:
    """This process's sessions (in Redis when the deployment has it), kept by the runtime for the life of the process."""
    return rt.part(LinkSessions, lambda: LinkSessions(redis_url=rt.settings.redis_url, keyring=rt.keyring))
