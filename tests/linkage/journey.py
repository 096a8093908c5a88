"""One production-like day on Undersigned, for the linkage attack to read afterwards.

The real application serves real HTTP (uvicorn in a thread) on a committed database of its own, with batching
on (anonymous signatures wait for the batch the server's batch task writes, run here by calling that same
function as the simulated minutes pass), Redis on (rate limits and the anonymous queue), and the worker's jobs
run as it runs them (`jobs.run_once`, after every step, as a worker polling every few seconds would).

Time is the application's clock, advanced by the journey: every row, log line and Redis lifetime is on that one
timeline, as on a real server (the hourly request tally and the command-line client keep clocks of their own;
both are pointed at it). Redis keys expire on it too (the journey deletes a rate-limit key once its simulated
window has passed), and the attacker receives copies of Redis taken every five simulated minutes, as the snapshots
a Redis server writes to disk. After the day the batches, the worker and the command-line users' cron go on
through the night until every anonymous action is published. Random choices (the people's pauses, the client's
sending moments) are seeded: every run is the same day.

Sixteen people spend the day: signing in at different hours, their wallets collecting tokens over HTTP,
signing publicly, for organizers and anonymously (in the browser's way and through `undersigned client`),
commenting with their name and anonymously, one withdrawing a named signature and then signing anonymously,
one signing by name from a device without his wallet (a forfeit of anonymity, issue 19), one linking his phone to
the wallet on his laptop (the linking protocol over HTTP, tests/linkage/wallet.py) and signing from the phone,
one entering her recovery code on a new laptop and commenting from it. Three polls (issue #25): one a responder
puts to every member in the morning, whose credential every wallet collects with its bundle, the ratification Olga
opens after leadership responds at noon, put to the screens petition's signers, and a second question Olga puts to
the same signers in the afternoon; three anonymous signers ask for the signer credential with their signature, the
named signers' wallets collect theirs, and each answers from the poll's page as ballot.js does (the exchange, then
the answer, both cookie-less), some both signers' polls with the same signer credential (Emil in one sitting), some
one; Pavel changes his answer once the first is counted. What each did is kept in `Truth`, which only the test
reads: the attacker gets `Capture`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Self, cast

import httpx2
import redis
from typer.testing import CliRunner

from app import jobs
from app import main as app_main
from app.anonymous import derive
from app.ballots import log as ballot_log
from app.ballots import service as ballots
from app.core import blindrsa
from app.core.b64url import decode as b64d
from app.core.b64url import encode as b64e
from app.core.clock import FrozenClock
from app.core.logging import JsonFormatter
from app.core.security import hash_password
from app.main import create_app
from app.models.accounts import User
from app.models.petitions import Petition
from app.models.responses import PetitionResponse, ResponseStatus
from tests import ballot_helpers, factories, live_server
from tests.conftest import PASSWORD, make_settings, make_user, redis_url
from tests.linkage import wallet

# The suite's own Redis database; a helper running it beside others points it elsewhere (LINKAGE_REDIS_URL).
REDIS_URL = os.environ.get("LINKAGE_REDIS_URL", redis_url(14))
START = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
END = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
BATCH_SECONDS = 300.0  # the default: a batch every five minutes
REDIS_COPY_SECONDS = 300  # Redis writes its snapshot every five minutes on a busy server
ANONYMOUS_COMMENTS_PATH = "/api/v1/anonymous/comments"
# What wallet.js asks for since polls (issue #25): every credential due, polls' and signer credentials included.
WALLET_PURPOSES = "sign,discuss,ballot,signer"


@dataclass(frozen=True)
class AnonymousSignature:
    petition_id: int
    account_id: int
    message: bytes
    via: str  # "browser" or "cli"


@dataclass(frozen=True)
class AnonymousComment:
    petition_id: int
    account_id: int
    body: str
    via: str  # "anonymous-route" (the wallet's discussion credential) or "session" (signed-in form)


class PendingExchange:
    """A signers' poll's exchange the server took for its batch (202), kept by the wallet with the chosen answer."""

    def __init__(
        self,
        person: Person,
        ballot_id: int,
        choice: list[int],
        signers_of: int,
        public: blindrsa.PublicKey,
        request: bytes,
        blinded: blindrsa.Blinded,
    ) -> None:
        self.person, self.ballot_id, self.choice, self.signers_of = person, ballot_id, choice, signers_of
        self.public, self.request, self.blinded = public, request, blinded
        self.tries = 0
        self.come_back_at = datetime.min.replace(tzinfo=UTC)
        self.closes_at = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PollAnswer:
    """An answer sent to a poll, cookie-less, with the poll's credential (its message): the batch counts it."""

    ballot_id: int
    account_id: int
    message: bytes
    choice: tuple[int, ...]
    # A signers' poll: the answerer's signature on the petition, as the token message of their anonymous signature
    # (None: their signature with a name).
    signature_message: bytes | None = None
    signer_message: bytes | None = None  # a signers' poll: the signer credential exchanged for the poll's


@dataclass
class Truth:
    """Who did what: for judging the attacker's answers, never given to it."""

    signatures: list[AnonymousSignature] = field(default_factory=list)
    comments: list[AnonymousComment] = field(default_factory=list)
    accounts: dict[str, int] = field(default_factory=dict)  # the day's people, by first name
    refused: list[str] = field(default_factory=list)  # anonymous actions the server refused, and why
    edits: dict[str, str] = field(default_factory=dict)  # an anonymous comment's first text: its edited text
    answers: list[PollAnswer] = field(default_factory=list)  # every answer sent, changes included
    polls: dict[str, int] = field(default_factory=dict)  # "members", "signers": the day's polls


@dataclass
class RedisCopy:
    at: datetime  # the simulated moment of the copy
    keys: list[dict[str, Any]]  # key, type, value, pttl_ms (-1: no expiry), as on that moment


@dataclass
class Capture:
    """What the attacker reads after the day: the database (by its URL, raw), the SQLite files' bytes, the
    application's log lines and the copies of Redis."""

    kind: str
    database_url: str
    files: dict[str, bytes]
    log_lines: list[str]
    redis_copies: list[RedisCopy]
    settings: dict[str, Any]  # the deployment's configuration, which is public (docs, /openapi.json, behaviour)
    ended_at: datetime
    # What anyone polling the polls' public pages sees (issue #25): (moment, poll, credentials_issued,
    # answers_counted, checkpoint size), at each moment one of them changed.
    public_polls: list[tuple[datetime, int, int, int, int]] = field(default_factory=list)


class LogLines(logging.Handler):
    """Every line the application logs, formatted by its own JSON formatter, with the application's clock."""

    def __init__(self, clock: FrozenClock) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.clock = clock
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.created = self.clock.now().timestamp()  # the deployment's clock is the simulated one
        self.lines.append(self.format(record))


class RedisClock:
    """Makes Redis keys live on the simulated clock: a key's window starts when the request that made it ran
    (simulated), and the key is deleted once that window has passed, as it would expire on a real server."""

    def __init__(self, url: str, clock: FrozenClock) -> None:
        self.redis = redis.Redis.from_url(url)
        self.clock = clock
        self.windows: dict[bytes, tuple[datetime, float]] = {}  # key: (first hit, window seconds)
        self.lifetimes: dict[bytes, int] = {}  # key: its real lifetime (ms) when last seen

    def observe(self) -> None:
        now = self.clock.now()
        present = set(self.redis.scan_iter(count=1000))
        for key in list(self.windows):
            if key not in present:
                del self.windows[key]
        for key in list(self.lifetimes):
            if key not in present:
                del self.lifetimes[key]
        # Every key's lifetime in one round trip: this runs after each request and tick of the day, and a PTTL
        # apiece was 6% of tests/test_linkage.py's samples (py-spy).
        keys = list(present)
        pipeline = self.redis.pipeline(transaction=False)
        for key in keys:
            pipeline.pttl(key)
        for key, pttl in zip(keys, pipeline.execute(), strict=True):
            # A real lifetime only shrinks: one that grew means the key was written again (a linking session
            # that became "done", then a new one for the same account), and its window starts again now.
            rewritten = pttl > self.lifetimes.get(key, pttl) + 1000
            if pttl > 0:
                self.lifetimes[key] = pttl
            if key in self.windows and not rewritten:
                continue
            if pttl > 0:
                self.windows[key] = (now, max(1.0, round(pttl / 1000)))
        for key, (first, seconds) in list(self.windows.items()):
            if first + timedelta(seconds=seconds) <= now:
                self.redis.delete(key)
                del self.windows[key]
                self.lifetimes.pop(key, None)

    def copy(self) -> RedisCopy:
        self.observe()
        now = self.clock.now()
        keys = []
        store: Any = self.redis  # bytes in and out (no decoding): redis-py types every answer as bytes or str
        for key in sorted(store.scan_iter(count=1000)):
            kind = store.type(key).decode()
            if kind == "string":
                value: Any = (store.get(key) or b"").decode("latin-1")
            elif kind == "hash":
                value = {k.decode("latin-1"): v.decode("latin-1") for k, v in store.hgetall(key).items()}
            elif kind in ("list",):
                value = [v.decode("latin-1") for v in store.lrange(key, 0, -1)]
            elif kind == "set":
                value = sorted(v.decode("latin-1") for v in store.smembers(key))
            elif kind == "zset":
                value = [(m.decode("latin-1"), s) for m, s in store.zrange(key, 0, -1, withscores=True)]
            else:
                value = None
            window = self.windows.get(key)
            pttl = (
                -1 if window is None else int(((window[0] + timedelta(seconds=window[1])) - now).total_seconds() * 1000)
            )
            keys.append({"key": key.decode("latin-1"), "type": kind, "value": value, "pttl_ms": pttl})
        return RedisCopy(at=now, keys=keys)


class Person:
    """One colleague's browser: cookies, the CSRF token, and the wallet (its tokens in IndexedDB)."""

    def __init__(self, day: Day, first: str, last: str) -> None:
        self.day = day
        self.first = first
        self.name = f"{first.title()} {last.title()}"
        self.email = f"{first}.{last}@example.org"
        self.client = httpx2.Client(
            base_url=day.base_url, follow_redirects=False, trust_env=False, verify=live_server.tls(), timeout=60
        )
        self._csrf: str | None = None
        self.tokens: dict[tuple[int, str], tuple[bytes, bytes]] = {}  # (petition, purpose): (message, signature)
        self.posted: dict[str, int] = {}  # anonymous comments posted from this session (before credentials)
        self.account_id = 0
        # A wallet of issue 19 (tests/linkage/wallet.py): credentials derived from one secret, which other
        # devices of the person receive by linking or by the recovery code. Without it, the older random tokens.
        self.derived = False
        self.secret: bytes | None = None
        # Signer credentials asked for with an anonymous signature, until the reply is kept (issue #25).
        self.signer_pending: dict[int, tuple[blindrsa.PublicKey, bytes, Any]] = {}

    def request(
        self,
        method: str,
        path: str,
        body: object | None = None,
        *,
        expect: int | tuple[int, ...] = 200,
        pause: float = 0.4,
    ) -> httpx2.Response:
        self.day.advance(pause * random.uniform(0.5, 1.5), worker=False)  # a browser's requests follow one another
        headers = {"Accept": "application/json"}
        if method != "GET":
            headers["X-CSRF-Token"] = self.csrf()
        response = self.client.request(method, path, json=body, headers=headers)
        self.day.after_request()
        allowed = (expect,) if isinstance(expect, int) else expect
        if response.status_code not in allowed:
            errors = [line for line in self.day.logs.lines[-20:] if '"level": "error"' in line]
            raise AssertionError(
                f"{self.name}: {method} {path} -> {response.status_code} {response.text[:300]}\n" + "\n".join(errors)
            )
        return response

    def csrf(self) -> str:
        if self._csrf is None:
            response = self.client.get("/api/v1/csrf", headers={"Accept": "application/json"})
            self.day.after_request()
            self._csrf = response.json()["csrf_token"]
        return self._csrf

    def sign_in(self) -> None:
        self.request("POST", "/api/v1/sessions", {"email": self.email, "password": PASSWORD})
        self._csrf = None  # the token is bound to the session, and the seed is new: fetched again, as a page would

    def open_petition(self, petition_id: int) -> None:
        """The petition's page; the wallet script on it collects every token due (wallet.js)."""
        self.request("GET", f"/petitions/{petition_id}")
        self.sync_wallet()

    def sync_wallet(self) -> None:
        if self.derived:
            wallet.sync(self)
            return
        state = self.request("GET", f"/api/v1/wallet?purposes={WALLET_PURPOSES}").json()
        due = state["due"]
        if not due:
            return
        published = {
            (
                key["ballot_id"] if key.get("purpose") == "ballot" else key["petition_id"],
                key.get("purpose", "sign"),
            ): key["key_id"]
            for key in self.day.bare("GET", "/api/v1/anonymous/keys").json()
        }
        pending, requests = {}, []
        for key in due:
            purpose = key.get("purpose", "sign")
            slot = (key["ballot_id"] if purpose == "ballot" else key["petition_id"], purpose)
            if purpose != "signer":  # a petition's signer key is published while it is open, if at all
                assert published.get(slot) == key["key_id"], f"{self.name} was shown an unpublished key for {slot}"
            public = blindrsa.PublicKey.from_spki(b64d(key["spki"]))
            message = blindrsa.prepare(secrets.token_bytes(32))
            blinded = blindrsa.blind(public, message)
            pending[slot] = (public, message, blinded)
            item = {"petition_id": key["petition_id"], "blinded_message": b64e(blinded.blinded_msg)}
            if "purpose" in key:
                item["purpose"] = purpose
            if purpose == "ballot":
                item["ballot_id"] = key["ballot_id"]
            requests.append(item)
        issued = self.request("POST", "/api/v1/wallet/tokens", {"tokens": requests}).json()["tokens"]
        for item in issued:
            purpose = item.get("purpose", "sign")
            slot = (item["ballot_id"] if purpose == "ballot" else item["petition_id"], purpose)
            public, message, blinded = pending[slot]
            signature = blindrsa.finalize(public, message, b64d(item["blind_signature"]), blinded.inv)
            self.tokens[slot] = (message, signature)

    def sign(self, petition_id: int, visibility: str) -> None:
        """With a name: the form carries the petition's token, so it is spent."""
        body: dict[str, object] = {"visibility": visibility}
        token = self.tokens.get((petition_id, "sign"))
        if token is not None:
            body["token"] = {"message": b64e(token[0]), "signature": b64e(token[1])}
        self.request("POST", f"/api/v1/petitions/{petition_id}/signature", body, expect=201)

    def sign_forfeiting(self, petition_id: int, visibility: str) -> None:
        """From a device without the wallet (a phone): with a name, giving up anonymity for this petition, as the
        sign panel offers (issue 19). The token stays in the other browser; the forfeit is a public count."""
        self.request(
            "POST",
            f"/api/v1/petitions/{petition_id}/signature",
            {"visibility": visibility, "forfeit": True},
            expect=201,
        )

    def withdraw(self, petition_id: int) -> None:
        self.request("DELETE", f"/api/v1/petitions/{petition_id}/signature", expect=204)

    def sign_anonymously(self, petition_id: int, *, after_withdrawal: bool = False, signer: bool = False) -> None:
        """As wallet.js does on "sign anonymously": the token, sent without any cookie, and with `signer` a blinded
        request for the petition's signer credential (issue #25), whose reply is kept with the signature by its
        batch. After a withdrawal the server may refuse it (the token a named signature spent stays spent): then it
        is noted, not published."""
        message, signature = self.tokens[(petition_id, "sign")]
        self.day.advance(random.uniform(0.2, 0.6), worker=False)
        body = {"petition_id": petition_id, "message": b64e(message), "signature": b64e(signature)}
        if signer:
            keys = self.day.bare("GET", "/api/v1/anonymous/keys").json()
            key = next(k for k in keys if k.get("purpose") == "signer" and k["petition_id"] == petition_id)
            public = blindrsa.PublicKey.from_spki(b64d(key["spki"]))
            request = blindrsa.prepare(secrets.token_bytes(32))
            blinded = blindrsa.blind(public, request)
            self.signer_pending[petition_id] = (public, request, blinded)
            body["signer_blinded"] = b64e(blinded.blinded_msg)
        response = self.day.bare("POST", "/api/v1/anonymous/signatures", body)
        if after_withdrawal and response.status_code == 409:
            self.day.truth.refused.append(
                f"{self.name}'s anonymous signature after withdrawing his named one: "
                f"{response.json()['error']['message']}"
            )
            return
        assert response.status_code == 202, (
            f"{self.name}: anonymous signature -> {response.status_code} {response.text}"
        )
        self.day.truth.signatures.append(AnonymousSignature(petition_id, self.account_id, message, "browser"))

    def fetch_signer_reply(self, petition_id: int) -> None:
        """The signer credential kept for this device's anonymous signature, fetched cookie-less under the token's
        nullifier once its batch wrote it (wallet.js, on the petition's page)."""
        public, request, blinded = self.signer_pending.pop(petition_id)
        nullifier = hashlib.sha256(self.tokens[(petition_id, "sign")][0]).hexdigest()
        response = self.day.bare("GET", f"/api/v1/petitions/{petition_id}/signer-replies/{nullifier}")
        assert response.status_code == 200, f"{self.name}: signer reply -> {response.status_code} {response.text}"
        reply = b64d(response.json()["blind_signature"])
        self.tokens[(petition_id, "signer")] = (request, blindrsa.finalize(public, request, reply, blinded.inv))

    def answer(self, ballot_id: int, choice: list[int], *, signers_of: int | None = None) -> None:
        """The poll's page (signed in: its wallet collects what is due), a while reading, then as ballot.js does on
        "answer": for a signers' poll the petition's signer credential exchanged cookie-less for the poll's (once),
        and the answer cookie-less. The worker polls a few seconds later, as it does. The exchange waits for the
        server's batch (202): the wallet keeps it with the answer, and the page, left open, sends the same request
        again after the batch (then twice as late each time it still waits), then the answer
        (Day.complete_exchanges)."""
        self.request("GET", f"/polls/{ballot_id}")
        self.sync_wallet()
        self.day.advance(random.uniform(20, 90), worker=False)
        if signers_of is not None and (signers_of, "signer") not in self.tokens:
            self.fetch_signer_reply(signers_of)
        if signers_of is not None and (ballot_id, "ballot") not in self.tokens:
            shown = self.day.bare("GET", f"/api/v1/ballots/{ballot_id}").json()
            public = blindrsa.PublicKey.from_spki(b64d(shown["key"]["spki"]))
            request = blindrsa.prepare(secrets.token_bytes(32))
            blinded = blindrsa.blind(public, request)
            pending = PendingExchange(self, ballot_id, choice, signers_of, public, request, blinded)
            pending.closes_at = datetime.fromisoformat(shown["closes_at"])
            if pending.closes_at.tzinfo is None:
                pending.closes_at = pending.closes_at.replace(tzinfo=UTC)
            if not self.exchange(pending):
                self.day.pending_exchanges.append(pending)
                self.day.advance(random.uniform(2, 6))
                return
            self.day.advance(random.uniform(0.2, 0.6), worker=False)
        self.send_answer(ballot_id, choice, signers_of)
        self.day.advance(random.uniform(2, 6))

    def exchange(self, pending: PendingExchange) -> bool:
        """The exchange, cookie-less: True once the poll's credential is held; False while it waits for a batch."""
        signer_message, signer_signature = self.tokens[(pending.signers_of, "signer")]
        response = self.day.bare(
            "POST",
            f"/api/v1/ballots/{pending.ballot_id}/exchange",
            {
                "message": b64e(signer_message),
                "signature": b64e(signer_signature),
                "blinded": b64e(pending.blinded.blinded_msg),
            },
        )
        if response.status_code == 202:
            # As ballot.js: twice as late each time it still waits, but back in the close's last batches.
            seconds = float(response.json()["come_back_in_seconds"])
            now = self.day.clock.now()
            target = now + timedelta(seconds=seconds * min(2**pending.tries, 12) + 1)
            latest = pending.closes_at - timedelta(seconds=1.5 * seconds)
            if target > latest:
                target = max(latest, now + timedelta(seconds=seconds + 1))
            pending.tries += 1
            pending.come_back_at = target
            return False
        assert response.status_code == 200, f"{self.name}: exchange -> {response.status_code} {response.text}"
        reply = b64d(response.json()["blind_signature"])
        self.tokens[(pending.ballot_id, "ballot")] = (
            pending.request,
            blindrsa.finalize(pending.public, pending.request, reply, pending.blinded.inv),
        )
        return True

    def send_answer(self, ballot_id: int, choice: list[int], signers_of: int | None) -> None:
        signature_message = None
        if signers_of is not None:
            mine = self.day.truth.signatures
            signature_message = next(
                (s.message for s in mine if s.petition_id == signers_of and s.account_id == self.account_id), None
            )
        message, signature = self.tokens[(ballot_id, "ballot")]
        response = self.day.bare(
            "POST",
            f"/api/v1/ballots/{ballot_id}/answers",
            {"message": b64e(message), "signature": b64e(signature), "choice": choice},
        )
        assert response.status_code == 202, f"{self.name}: answer -> {response.status_code} {response.text}"
        self.day.truth.answers.append(
            PollAnswer(
                ballot_id,
                self.account_id,
                message,
                tuple(choice),
                signature_message,
                self.tokens[(signers_of, "signer")][0] if signers_of is not None else None,
            )
        )

    def comment(self, petition_id: int, body: str, parent_id: int | None = None) -> int:
        response = self.request(
            "POST", f"/api/v1/petitions/{petition_id}/comments", {"body": body, "parent_id": parent_id}, expect=201
        )
        return int(response.json()["id"])

    def comment_anonymously(self, petition_id: int, body: str, parent_id: int | None = None) -> None:
        if self.day.discussion_credentials:
            # The wallet's discussion credential, sent without cookies (docs: the anonymous-discussion contract).
            message, signature = self.tokens[(petition_id, "discuss")]
            self.day.advance(random.uniform(0.2, 0.6), worker=False)
            response = self.day.bare(
                "POST",
                ANONYMOUS_COMMENTS_PATH,
                {
                    "petition_id": petition_id,
                    "message": b64e(message),
                    "signature": b64e(signature),
                    "body": body,
                    "parent_id": parent_id,
                },
            )
            assert response.status_code == 202, (
                f"{self.name}: anonymous comment -> {response.status_code} {response.text}"
            )
            via = "anonymous-route"
        else:
            posted = self.request(
                "POST",
                f"/api/v1/petitions/{petition_id}/comments",
                {"body": body, "parent_id": parent_id, "anonymous": True},
                expect=201,
            )
            self.posted[body] = int(posted.json()["id"])
            via = "session"
        self.day.truth.comments.append(AnonymousComment(petition_id, self.account_id, body, via))

    def edit_anonymous_comment(self, petition_id: int, body: str, new_body: str) -> bool:
        """The author fixes their anonymous comment: with the discussion credential, without cookies, once the
        comment is published (found by the pseudonym only the wallet can compute); or, before discussion
        credentials, from the signed-in session that wrote it. False when it is not published yet."""
        if self.day.discussion_credentials:
            message, signature = self.tokens[(petition_id, "discuss")]
            name = "Colleague " + hashlib.sha256(b"undersigned/pseudonym/v1" + message).hexdigest()[:6]
            listing = self.day.bare("GET", f"/api/v1/petitions/{petition_id}/comments?sort=newest&limit=100").json()
            found = [item["id"] for item in _walk(listing["items"]) if item.get("author") == name]
            if not found:
                return False
            self.day.advance(random.uniform(20, 90), worker=False)
            response = self.day.bare(
                "POST",
                f"{ANONYMOUS_COMMENTS_PATH}/{found[0]}/edit",
                {"message": b64e(message), "signature": b64e(signature), "body": new_body},
            )
            # 202: applied by the next batch (200 from servers that applied it at once).
            assert response.status_code in (200, 202), (
                f"{self.name}: anonymous edit -> {response.status_code} {response.text}"
            )
        else:
            self.request("PATCH", f"/api/v1/comments/{self.posted[body]}", {"body": new_body})
        self.day.truth.edits[body] = new_body
        return True

    def close(self) -> None:
        self.client.close()


class Day:
    """The deployment and its simulated day."""

    def __init__(self, kind: str, database_url: str, folder: Path) -> None:
        self.kind = kind
        self.database_url = database_url
        self.folder = folder
        self.clock = FrozenClock(START)
        self.truth = Truth()
        self.people: dict[str, Person] = {}
        self.devices: list[Person] = []  # people's other browsers
        self.link_material = wallet.KeyMaterial()  # what the linking devices made (never given to the attacker)
        self._next_batch = START + timedelta(seconds=BATCH_SECONDS)
        self._next_copy = START + timedelta(seconds=REDIS_COPY_SECONDS)
        self.redis_copies: list[RedisCopy] = []
        self.files: dict[str, bytes] = {}
        self.cli_wallets: set[Path] = set()
        self.waiting: list[tuple[Person, str, int, float, datetime]] = []
        self._password_hash: str | None = None
        self._comment_hour = START
        self.public_polls: list[tuple[datetime, int, int, int, int]] = []
        self._seen_polls: dict[int, tuple[int, int, int]] = {}
        self.pending_exchanges: list[PendingExchange] = []

    # -- the deployment --------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        redis.Redis.from_url(REDIS_URL).flushdb()
        self.redis = RedisClock(REDIS_URL, self.clock)
        sock = live_server.reserve_port()
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.settings = make_settings(
            self.database_url,
            base_url=self.base_url,
            redis_url=REDIS_URL,
            anonymous_batch_seconds=BATCH_SECONDS,
            inprocess_worker=False,
        )
        self.app = create_app(self.settings, clock=self.clock)
        self.logs = LogLines(self.clock)
        self._logger = logging.getLogger("undersigned")
        self._handlers = list(self._logger.handlers)
        self._logger.handlers[:] = [self.logs]
        # Two clocks the application keeps outside its runtime: the hourly request tally's and the command-line
        # client's. Both read the deployment's (simulated) clock here, as they read the real one on a server.
        from app.clients import anonymous as cli_client
        from app.core import web

        self._restore: list[tuple[object, str, object]] = []
        tally = getattr(web, "hourly_requests", None)
        if tally is not None and hasattr(tally, "now"):
            self._restore.append((tally, "now", tally.now))
            tally.now = self.clock.now
        if hasattr(cli_client, "clock"):
            self._restore.append((cli_client, "clock", cli_client.clock))
            cli_client.clock = lambda: self.clock.now().timestamp()
        if hasattr(cli_client, "random"):
            # The client's random moments (when a queued action is sent) drawn from a seeded generator, so every
            # run of the suite is the same day; the attacker must hold whatever they are.
            drawn = random.Random(18)
            self._restore.append((cli_client, "random", cli_client.random))
            cli_client.random = cast(Any, SimpleNamespace(SystemRandom=lambda: drawn, Random=lambda *a: drawn))
        self.live = live_server.start(self.app, sock)
        self.runtime = self.app.state.runtime
        paths = self.bare("GET", "/openapi.json").json()["paths"]
        self.discussion_credentials = ANONYMOUS_COMMENTS_PATH in paths
        self.cli_commands = _client_commands()
        return self

    def __exit__(self, *exc: object) -> None:
        for person in [*self.people.values(), *self.devices]:
            person.close()
        try:
            self.live.stop()
        finally:
            self._logger.handlers[:] = self._handlers
            for target, name, value in self._restore:
                setattr(target, name, value)

    def bare(self, method: str, path: str, body: object | None = None) -> httpx2.Response:
        """A request without any cookie (the wallet's anonymous requests, anyone reading public data)."""
        with httpx2.Client(base_url=self.base_url, trust_env=False, verify=live_server.tls(), timeout=60) as client:
            response = client.request(method, path, json=body, headers={"Accept": "application/json"})
        self.after_request()
        return response

    def after_request(self) -> None:
        self.redis.observe()

    # -- the clock, the batches, the worker ------------------------------------------------------------------

    def advance(self, seconds: float, *, worker: bool = True) -> None:
        target = self.clock.now() + timedelta(seconds=seconds)
        while min(self._next_batch, self._next_copy) <= target:
            moment = min(self._next_batch, self._next_copy)
            self._set(moment)
            batch_due, copy_due = moment == self._next_batch, moment == self._next_copy
            if batch_due:
                self._next_batch += timedelta(seconds=BATCH_SECONDS)
            if copy_due:
                self._next_copy += timedelta(seconds=REDIS_COPY_SECONDS)
            if batch_due:
                self.batch()
            if copy_due:
                self.cron()
                self.worker()
                self.redis_copies.append(self.redis.copy())
        self._set(target)
        if worker:
            self.worker()

    def until(self, hour: int, minute: int = 0, second: float = 0) -> None:
        target = START.replace(hour=hour, minute=minute) + timedelta(seconds=second)
        assert target >= self.clock.now(), f"the journey went back in time to {target}"
        self.advance((target - self.clock.now()).total_seconds())

    def _set(self, moment: datetime) -> None:
        self.clock.advance(moment - self.clock.now())
        self.redis.observe()

    def batch(self) -> None:
        """What the server's batch tasks run every `anonymous_batch_seconds`: the anonymous signatures (and the
        logs), and the anonymous comments with the first round of each hour (app/main.py)."""
        app_main._write_anonymous_batch(self.app)
        self.complete_exchanges()
        hour = self.clock.now().replace(minute=0, second=0, microsecond=0)
        if hasattr(app_main, "_write_comment_batch") and hour != self._comment_hour:
            self._comment_hour = hour
            app_main._write_comment_batch(self.app)
        self.redis.observe()
        self.poll_public_pages()

    def complete_exchanges(self) -> None:
        """The poll pages left open on a pending exchange: each, once its moment to come back has passed, sends the
        same request again; with the credential, it sends the kept answer (app/static/ballot.js)."""
        pending, self.pending_exchanges = self.pending_exchanges, []
        for item in pending:
            if item.come_back_at > self.clock.now() or not item.person.exchange(item):
                self.pending_exchanges.append(item)
                continue
            item.person.send_answer(item.ballot_id, item.choice, item.signers_of)

    def worker(self) -> None:
        jobs.run_once(sessions=self.app.state.write_sessionmaker, rt=self.runtime)
        self.redis.observe()
        self.poll_public_pages()

    def poll_public_pages(self) -> None:
        """What someone polling every poll's public page and checkpoint sees, after each batch and jobs round (the
        only moments a signers' poll's figures move): its credentials issued ("hidden among N"), answers counted
        and checkpoint size, kept at each change with the moment it was seen. Read from the tables the pages show
        (a request apiece would cost the day a request per poll at each round)."""
        from sqlalchemy import text

        with self.app.state.sessionmaker() as db:
            rows = db.execute(
                text(
                    "SELECT b.id, b.credentials_issued, b.answers_counted, "
                    "(SELECT COALESCE(MAX(c.size), 0) FROM ballot_checkpoints c WHERE c.ballot_id = b.id) "
                    "FROM ballots b"
                )
            ).all()
        for ballot_id, issued, counted, size in rows:
            figures = (int(issued), int(counted), int(size))
            if self._seen_polls.get(int(ballot_id)) != figures:
                self._seen_polls[int(ballot_id)] = figures
                self.public_polls.append((self.clock.now(), int(ballot_id), *figures))

    # -- the people ------------------------------------------------------------------------------------------

    def device(self, person: Person) -> Person:
        """Another browser of the same person (a phone, a new laptop): the same account, cookies and IndexedDB of
        its own, with a wallet of issue 19 (it has no secret until it is linked or given the recovery code)."""
        device = Person(self, person.first, person.email.split("@")[0].split(".", 1)[1])
        device.name = f"{person.name}'s other device"
        device.account_id = person.account_id
        device.derived = True
        self.devices.append(device)
        return device

    def link_devices(self, a: Person, b: Person) -> None:
        """Device linking as the two /wallet/link pages run it over HTTP (spec section 3): A opens the page and
        shows the code, B opens it and the person types the code a little later, A's poll sees the answer and
        seals the secret, B's poll opens it, checks it against the account's wallet_check and says done."""
        a.request("GET", "/wallet/link")
        offer = wallet.LinkingA(a, self.link_material)
        offer.open()
        b.request("GET", "/wallet/link")
        self.advance(random.uniform(20, 60), worker=False)  # typing the code shown on the other screen
        assert a.request("GET", wallet.LINK_PATH).json()["state"] == "offered"  # A's poll
        answer = wallet.LinkingB(b, offer.shown, self.link_material)
        answer.answer()
        # A Redis snapshot that falls while the session is open: the attacker gets the session's key, if any.
        self.redis_copies.append(self.redis.copy())
        self.advance(random.uniform(1, 3), worker=False)  # A's next poll
        offer.complete()
        self.advance(random.uniform(1, 3), worker=False)  # B's next poll
        answer.receive()
        assert b.secret == a.secret

    def person(self, first: str, last: str) -> Person:
        person = Person(self, first, last)
        if self._password_hash is None:  # one hash for everyone's (same) password: argon2 takes its time
            self._password_hash = hash_password(PASSWORD)
        with self.app.state.write_sessionmaker() as db:
            user = make_user(db, email=person.email, name=person.name, password=None)
            user.password_hash = self._password_hash
            db.commit()
            person.account_id = user.id
        self.people[first] = person
        self.truth.accounts[first] = person.account_id
        return person

    def cli_sign_anonymously(
        self, person: Person, petition_url: str, petition_id: int, *, within_hours: float = 12.0
    ) -> None:
        """`undersigned client sign URL --anonymous`, in this process, against the live server. A client that
        queues the submission (`client collect` early, `client send` from cron later) is used that way."""
        wallet = self._wallet(person)
        login = ["--email", person.email, "--password", PASSWORD, "--wallet", str(wallet)]
        if "collect" in self.cli_commands:
            self._cli(["client", "collect", petition_url, *login])
            self.advance(random.uniform(60, 300))
            self.cli_wallets.add(wallet)
            self._queue_cli_signature(person, petition_url, petition_id, within_hours)
        else:
            self._cli(["client", "sign", petition_url, "--anonymous", *login])
            self._record_cli_signature(person, petition_id)

    def _queue_cli_signature(
        self,
        person: Person,
        petition_url: str,
        petition_id: int,
        within_hours: float,
        *,
        accept_small_crowd: bool = False,
    ) -> bool:
        """`client sign --anonymous`: queued, or refused while fewer than k colleagues hold the token. Then the
        person does as the client says and tries again later (the cron rounds, once an hour)."""
        arguments = [
            "client",
            "sign",
            petition_url,
            "--anonymous",
            "--within",
            str(within_hours),
            "--email",
            person.email,
            "--password",
            PASSWORD,
            "--wallet",
            str(self._wallet(person)),
        ]
        if accept_small_crowd:
            arguments.append("--accept-small-crowd")
        output = self._cli(arguments, small_crowd_ok=True)
        if output is None:
            self.waiting.append((person, petition_url, petition_id, within_hours, self.clock.now()))
            self.truth.refused.append(
                f"{person.name}'s `client sign --anonymous` at {self.clock.now():%H:%M}: "
                "fewer than k colleagues held the token; they tried again later"
            )
            return False
        self._record_cli_signature(person, petition_id)
        return True

    def _record_cli_signature(self, person: Person, petition_id: int) -> None:
        message = _wallet_message(self._wallet(person), petition_id)
        self.truth.signatures.append(AnonymousSignature(petition_id, person.account_id, message, "cli"))

    def cli_comment_anonymously(
        self, person: Person, petition_url: str, petition_id: int, body: str, *, within_hours: float = 12.0
    ) -> bool:
        """`undersigned client comment URL --anonymous --text ...` (queued, sent later by `client send`), where
        the client has it."""
        if "comment" not in self.cli_commands or not self.discussion_credentials:
            return False
        wallet = self._wallet(person)
        self._cli(
            [
                "client",
                "comment",
                petition_url,
                "--anonymous",
                "--text",
                body,
                "--within",
                str(within_hours),
                "--email",
                person.email,
                "--password",
                PASSWORD,
                "--wallet",
                str(wallet),
            ]
        )
        self.cli_wallets.add(wallet)
        self.truth.comments.append(AnonymousComment(petition_id, person.account_id, body, "cli"))
        return True

    def cli_check(self, petition_url: str, person: Person) -> None:
        self._cli(["client", "check", petition_url, "--wallet", str(self._wallet(person))])

    def _wallet(self, person: Person) -> Path:
        return self.folder / f"wallet-{person.first}" / "wallet.json"

    def cron(self) -> None:
        """`undersigned client send` from each command-line user's cron, when something queued is due; and a
        person told to wait for a bigger crowd tries again an hour later (after the day, accepting it)."""
        waiting, self.waiting = self.waiting, []
        for person, petition_url, petition_id, within_hours, tried in waiting:
            if self.clock.now() - tried < timedelta(hours=1):
                self.waiting.append((person, petition_url, petition_id, within_hours, tried))
                continue
            self._queue_cli_signature(
                person, petition_url, petition_id, within_hours, accept_small_crowd=self.clock.now() >= END
            )
        now = self.clock.now().timestamp()
        for wallet_file in sorted(self.cli_wallets):
            outbox = json.loads(wallet_file.read_text()).get("outbox", []) if wallet_file.exists() else []
            if any(float(item["due"]) <= now for item in outbox):
                self._cli(["client", "send", "--wallet", str(wallet_file)])

    def _cli(self, arguments: list[str], *, small_crowd_ok: bool = False) -> str | None:
        """Run `undersigned <arguments>`; its output, or None when it refused because the crowd is small."""
        from app.cli import cli

        self.advance(0.3, worker=False)
        result = CliRunner().invoke(cli, arguments, catch_exceptions=False)
        self.after_request()
        if small_crowd_ok and result.exit_code != 0 and "--accept-small-crowd" in result.output:
            return None
        assert result.exit_code == 0, f"undersigned {' '.join(arguments[:2])}: {result.output}"
        return result.output

    # -- the end ---------------------------------------------------------------------------------------------

    def finish(self) -> None:
        """The evening and night: the batches, the worker and the command-line users' cron go on until every
        anonymous action of the day is published (a small batch waits for more entries, or its maximum delay)."""
        deadline = self.clock.now() + timedelta(hours=30)
        while self.waiting or self.pending_exchanges or not self.published():
            if self.clock.now() >= deadline:
                missing = [
                    f"{type(item).__name__} by account {item.account_id} on "
                    + (f"poll {item.ballot_id}" if isinstance(item, PollAnswer) else f"petition {item.petition_id}")
                    + f" ({getattr(item, 'via', 'cookie-less')})"
                    for item in self.unpublished()
                ]
                errors = [line for line in self.logs.lines if '"level": "error"' in line][-5:]
                raise AssertionError(
                    "anonymous actions of the day were still unpublished 30 hours later: "
                    + "; ".join(missing)
                    + "\n"
                    + "\n".join(errors)
                )
            self.advance(REDIS_COPY_SECONDS)
        self.batch()
        self.worker()

    def published(self) -> bool:
        return not self.unpublished()

    def unpublished(self) -> list[Any]:
        from sqlalchemy import text

        with self.app.state.sessionmaker() as db:
            messages = {
                bytes(m)
                for m in db.execute(
                    text("SELECT token_message FROM signatures WHERE token_message IS NOT NULL")
                ).scalars()
            }
            bodies = set(db.execute(text("SELECT body FROM comments")).scalars())
            answers = {
                (bytes(message), choice)
                for message, choice in db.execute(text("SELECT message, choice FROM ballot_answers")).all()
            }
        last = {(a.ballot_id, a.message): a for a in self.truth.answers}  # only a credential's last answer counts
        waiting = [a for a in last.values() if (a.message, ballot_log.canonical_choice(list(a.choice))) not in answers]
        return (
            waiting
            + [s for s in self.truth.signatures if s.message not in messages]
            + [c for c in self.truth.comments if c.body not in bodies and self.truth.edits.get(c.body) not in bodies]
        )

    def capture(self) -> Capture:
        """After the last batch and worker round: the SQLite files as they are on disk (the WAL included, read
        while the server still has the database open), the logs and the Redis copies."""
        if self.kind == "sqlite":
            path = Path(self.database_url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-journal"):
                candidate = Path(f"{path}{suffix}")
                if candidate.exists():
                    self.files[f"db{suffix}"] = candidate.read_bytes()
        self.redis_copies.append(self.redis.copy())
        settings = self.settings
        public = {
            "anonymous_batch_seconds": settings.anonymous_batch_seconds,
            "min_group_size": settings.min_group_size,
            "session_days": settings.session_days,
            "code_minutes": settings.code_minutes,
            "worker_poll_seconds": settings.outbox_poll_seconds,
        }
        for name in ("anonymous_batch_max_seconds", "anonymous_max_delay_seconds", "anonymous_batch_max_delay_seconds"):
            if hasattr(settings, name):
                public[name] = getattr(settings, name)
        return Capture(
            kind=self.kind,
            database_url=self.database_url,
            files=dict(self.files),
            log_lines=list(self.logs.lines),
            redis_copies=list(self.redis_copies),
            settings=public,
            ended_at=self.clock.now(),
            public_polls=list(self.public_polls),
        )


def _walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Comments and their replies, flattened."""
    found = []
    for item in items:
        found.append(item)
        found += _walk(item.get("replies") or [])
    return found


def _client_commands() -> set[str]:
    from app.cli import client_cli

    return {
        command.name or command.callback.__name__.removeprefix("client_")  # type: ignore[union-attr]
        for command in client_cli.registered_commands
    }


def _wallet_message(wallet: Path, petition_id: int) -> bytes:
    content = json.loads(wallet.read_text())
    if isinstance(content.get("credentials"), dict):  # slots "base|email|petition|purpose"
        for slot, credential in content["credentials"].items():
            _base, _email, number, purpose = slot.rsplit("|", 3)
            if int(number) == petition_id and purpose == "sign" and credential.get("message"):
                return b64d(credential["message"])
    for token in content.values():
        if isinstance(token, dict) and token.get("petition_id") == petition_id and token.get("message"):
            return b64d(token["message"])
    raise AssertionError(f"the CLI's wallet holds no token message for petition {petition_id}")


# -- the day's script ------------------------------------------------------------------------------------------

PEOPLE = [
    ("olga", "oduya"),
    ("pavel", "pryce"),
    ("anouk", "abara"),
    ("orla", "ostrowski"),
    ("chen", "cho"),
    ("wes", "wright"),
    ("bruno", "baptiste"),
    ("dara", "dunne"),
    ("emil", "eklund"),
    ("fatima", "farah"),
    ("gus", "gallo"),
    ("hana", "hoshi"),
    ("ivan", "ilic"),
    ("jun", "jang"),
    ("kofi", "kamara"),
    ("lena", "lund"),
]


def run(day: Day) -> Capture:
    """The day. Each person signs in at their own time; their browser's wallet collects their tokens whenever a
    petition page opens; the worker and the batches run as the minutes pass."""
    random.seed(18)
    p = {first: day.person(first, last) for first, last in PEOPLE}
    with day.app.state.write_sessionmaker() as db:
        olga = db.get(User, p["olga"].account_id)
        screens = factories.open_petition(
            db, day.runtime, creator=olga, allow_anonymous=True, title="Stop recording our screens to train AI"
        ).id
        bruno = db.get(User, p["bruno"].account_id)
        salaries = factories.open_petition(
            db, day.runtime, creator=bruno, allow_anonymous=True, title="Publish the salary bands"
        ).id
        # Issue #25: a poll put to every member by a responder, open from the morning; every wallet collects its
        # credential with its bundle.
        responder = ballot_helpers.pulse_author(db)
        members = ballot_helpers.pulse_ballot(
            db,
            day.runtime,
            author=responder,
            question="Should the office stay open on Fridays?",
            closes_at=START.replace(hour=18),
        ).id
        responder_id = responder.id
    day.truth.polls["members"] = members
    url = f"{day.base_url}/petitions/{screens}"
    salaries_url = f"{day.base_url}/petitions/{salaries}"

    day.until(7, 40)
    p["olga"].sign_in()
    p["olga"].open_petition(screens)
    p["olga"].sign(screens, "public")
    olga_comment = p["olga"].comment(screens, "I started this because the recordings are kept for years.")

    day.until(8, 5)
    p["pavel"].sign_in()
    p["pavel"].open_petition(screens)
    p["pavel"].sign(screens, "public")
    pavel_comment = p["pavel"].comment(screens, "Signed. Nobody asked us before the recording began.")
    p["pavel"].answer(members, [0])

    day.until(8, 30)
    p["anouk"].sign_in()
    p["anouk"].open_petition(screens)
    day.advance(170)
    p["anouk"].sign_anonymously(screens, signer=True)  # her wallet asks for the signer credential with it
    day.advance(140)
    anouk_said = "My team lead reads our screen recordings every Friday."
    anouk_fixed = "My team lead reads our screen recordings every Friday afternoon."
    p["anouk"].comment_anonymously(screens, anouk_said)
    if not day.discussion_credentials:  # the session that wrote it is the only one that may edit it
        day.advance(400)
        p["anouk"].edit_anonymous_comment(screens, anouk_said, anouk_fixed)

    day.until(9, 10)
    p["orla"].sign_in()
    p["orla"].open_petition(screens)
    p["orla"].sign(screens, "organizers")
    day.advance(95)
    p["orla"].comment_anonymously(
        screens, "Same in my team: the recordings came up in my review.", parent_id=pavel_comment
    )

    day.until(9, 30)  # Kofi's laptop makes his wallet (issue 19) and collects
    p["kofi"].derived = True
    p["kofi"].sign_in()
    p["kofi"].open_petition(screens)

    day.until(9, 45)
    day.cli_sign_anonymously(p["chen"], url, screens)

    day.until(10, 5)  # so does Lena's, and she keeps the recovery code the wallet page offers
    p["lena"].derived = True
    p["lena"].sign_in()
    p["lena"].open_petition(screens)
    p["lena"].request("GET", "/wallet")
    assert p["lena"].secret is not None
    lena_code = derive.recovery_code(p["lena"].secret)

    day.until(10, 20)
    p["wes"].sign_in()
    p["wes"].open_petition(screens)
    p["wes"].sign(screens, "public")
    day.cli_check(url, p["chen"])

    day.until(10, 50)
    p["bruno"].sign_in()
    p["bruno"].open_petition(salaries)
    # The discussion's first comment: the organizers' digest goes out right after it.
    p["bruno"].comment_anonymously(salaries, "The bands exist already; publishing them costs nothing.")
    day.advance(60)
    p["bruno"].sign_anonymously(salaries)

    day.until(11, 30)
    p["dara"].sign_in()
    p["dara"].open_petition(screens)
    p["dara"].sign(screens, "organizers")
    p["dara"].request("GET", f"/petitions/{salaries}")
    p["dara"].sign(salaries, "public")
    p["dara"].answer(members, [1])

    day.until(12, 0)  # leadership responds to the screens petition; Olga asks its signers whether it answers it
    with day.app.state.write_sessionmaker() as db:
        response = PetitionResponse(
            petition_id=screens,
            responder_id=responder_id,
            summary="Recordings will be kept for 90 days",
            details="We will shorten retention and review the training use.",
            status=ResponseStatus.partially_accepted,
            created_at=day.clock.now(),
        )
        db.add(response)
        db.flush()
        signers = ballots.open_ratification(
            db,
            day.runtime,
            actor=db.get_one(User, p["olga"].account_id),
            petition=db.get_one(Petition, screens),
            response=response,
            closes_at=START.replace(hour=19),
        ).id
        db.commit()
    day.truth.polls["signers"] = signers

    day.until(12, 15)
    p["wes"].sign_in()  # another day's browser session: he changed his mind about showing his name
    p["wes"].open_petition(screens)
    p["wes"].withdraw(screens)
    day.advance(300)
    p["wes"].open_petition(screens)  # the wallet collects a fresh token if the server issues one
    p["wes"].sign_anonymously(screens, after_withdrawal=True)

    day.until(12, 40)  # Olga signed with her name: her wallet collects the signer credential, exchanged for the poll's
    p["olga"].sign_in()
    p["olga"].answer(signers, [0], signers_of=screens)

    day.until(13, 0)
    p["emil"].sign_in()
    p["emil"].open_petition(screens)
    day.advance(40)
    p["fatima"].sign_in()
    p["fatima"].open_petition(screens)
    day.advance(20)
    p["emil"].sign_anonymously(screens, signer=True)
    day.advance(15)
    p["fatima"].sign_anonymously(screens, signer=True)

    day.until(13, 40)  # Kofi links his phone to the wallet on his laptop, and signs from the phone
    kofi_phone = day.device(p["kofi"])
    kofi_phone.sign_in()
    day.link_devices(p["kofi"], kofi_phone)
    kofi_phone.open_petition(screens)  # the kept replies, finalized from the same secret
    day.advance(90)
    kofi_phone.sign_anonymously(screens)

    day.until(13, 55)
    p["orla"].sign_in()
    p["orla"].answer(signers, [1], signers_of=screens)

    day.until(14, 10)
    p["gus"].sign_in()
    p["gus"].open_petition(salaries)
    p["gus"].sign(salaries, "public")
    p["gus"].comment(screens, "Does anyone know how long the recordings are kept?")
    day.advance(200)
    p["gus"].comment_anonymously(
        screens, "Security told me privately they are kept for seven years.", parent_id=olga_comment
    )
    p["gus"].answer(members, [2])

    day.until(14, 40)  # a second question to the same signers: each exchanges the same signer credential again
    with day.app.state.write_sessionmaker() as db:
        demands = ballot_helpers.petition_ballot(
            db,
            day.runtime,
            db.get_one(Petition, screens),
            db.get_one(User, p["olga"].account_id),
            question="Which demand should we take to the works council first?",
            options=["Delete the recordings", "An opt-out for everyone", "An independent audit"],
            closes_at=START.replace(hour=19),
        ).id
    day.truth.polls["signers, second"] = demands
    p["olga"].answer(demands, [0], signers_of=screens)

    day.until(15, 30)
    p["hana"].sign_in()
    p["hana"].open_petition(screens)
    p["hana"].sign(screens, "public")
    day.advance(120)
    p["hana"].comment_anonymously(screens, "HR said the footage was used in two dismissals last year.")
    p["hana"].answer(signers, [0], signers_of=screens)
    p["hana"].answer(demands, [2], signers_of=screens)
    p["hana"].answer(members, [0])

    day.until(15, 50)  # Lena's laptop was wiped: on the new one she enters her recovery code, and comments
    lena_new = day.device(p["lena"])
    lena_new.sign_in()
    lena_new.request("GET", "/wallet")
    wallet.import_recovery_code(lena_new, lena_code)
    lena_new.open_petition(screens)
    day.advance(150)
    lena_new.comment_anonymously(screens, "The recordings also capture our private messages on screen.")

    day.until(16, 45)
    p["ivan"].sign_in()
    p["ivan"].open_petition(screens)
    p["ivan"].comment(salaries, "Would the bands include bonuses?")
    p["ivan"].answer(members, [1])

    day.until(16, 50)
    if day.discussion_credentials:  # on his phone, where no wallet is: he gives up anonymity and signs by name
        p["ivan"].sign_in()
        p["ivan"].sign_forfeiting(screens, "public")

    day.until(16, 55)
    if day.discussion_credentials:  # back later: her wallet finds her comment, published, and fixes it
        p["anouk"].sign_in()
        p["anouk"].open_petition(screens)
        if not p["anouk"].edit_anonymous_comment(screens, anouk_said, anouk_fixed):
            day.truth.refused.append("Anouk's anonymous comment was not published by 16:55: not edited")
    else:
        p["anouk"].sign_in()
    p["anouk"].answer(signers, [2], signers_of=screens)  # with the signer credential kept for her signature
    p["anouk"].answer(demands, [1], signers_of=screens)  # the same credential, exchanged for the second poll's

    day.until(17, 20)
    day.cli_sign_anonymously(p["jun"], salaries_url, salaries, within_hours=4)
    day.cli_comment_anonymously(
        p["jun"], salaries_url, salaries, "Bonuses are where the gap is; include them.", within_hours=4
    )

    day.until(17, 30)  # Pavel changes his answer (its first one is counted); Emil and Fatima answer the signers
    p["pavel"].sign_in()
    p["pavel"].answer(members, [2])
    p["emil"].sign_in()
    p["emil"].answer(signers, [0], signers_of=screens)
    p["emil"].answer(demands, [0], signers_of=screens)  # both polls in one sitting; Fatima answers only the first
    day.until(17, 45)
    p["fatima"].sign_in()
    p["fatima"].answer(signers, [1], signers_of=screens)

    day.until(END.hour)
    day.finish()
    return day.capture()
