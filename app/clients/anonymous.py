"""The command-line wallet: the same protocol as the browser's, for people who do not trust a web page.

Time is what gives an anonymous action away: a sign-in at 09:14:03 and an anonymous signature at 09:14:04 are
one person. So the wallet keeps its session (a cookie jar beside the wallet file) and its credentials between
runs, collects credentials long before they are used (`client collect`), and queues anonymous actions to be
sent at a random later moment (`client sign --anonymous`, `client comment --anonymous`), by `client send`,
which never signs in and sends no cookie. Before blinding against a key and again before sending, every key is
held to the one everyone is shown (see keycheck.py).

One wallet on every device: the credentials derive from one wallet secret per account (derive.py), the same the
browser keeps, so the command line and the browser are one wallet. `client wallet export` prints its recovery
code, `client wallet import` takes one (checked against the account's wallet_check first), and `client collect`
starts a wallet when the account has none, finalizes the replies the server kept for credentials another device
collected, and derives what is due.

The wallet file (JSON, mode 0600, replaced atomically) holds:
    {"version": 2,
     "accounts": {base_url: {"email": ...}},
     "secrets": {"base|email": {"secret": b64url, "check": b64url}},
     "credentials": {"base|email|petition|purpose": {petition_id, purpose, key_id, spki, message, signature,
                                                     status, ...}},
     "outbox": [{id, kind: signature|comment|edit|delete, base_url, petition_id, slot, due, ...}]}
A file from before (a flat map of signing tokens) is read as version 2 with every token of purpose "sign"; its
random credentials (from before wallets had a secret) keep working beside the derived ones.
Standard library HTTP only, so the command needs nothing beyond the package itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.cookiejar
import json
import os
import random
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from app.anonymous import derive
from app.core import blindrsa
from app.core.b64url import decode as _b64d
from app.core.b64url import encode as _b64e

Wallet = dict[str, Any]
WALLET_VERSION = 2
PURPOSES = ("sign", "discuss")
# Every purpose this client derives (issue #25): a poll's credential ("ballot", named by the poll) and a petition's
# signer credential. `client collect` asks for the first two only, as before; `client answer` for all of them.
ALL_PURPOSES = ("sign", "discuss", "signer", "ballot")
SPENT_OR_SENT = ("queued", "submitted", "published", "spent")
clock: Callable[[], float] = time.time  # the one source of "now" for the commands; tests replace it
sleep: Callable[[float], None] = time.sleep  # and of waiting, for `client send --wait`


class ClientError(Exception):
    """What went wrong, in words for the person at the terminal."""


class WalletElsewhere(ClientError):
    """The account's wallet was started on another device, and this file does not hold its secret."""


class Unreachable(ClientError):
    """The server could not be reached: nothing happened, and the same request can be made again later."""


class KeyRequirement(Protocol):
    def require(self, *, petition_id: int, purpose: str, key_id: str, spki: str) -> None: ...


@dataclass(frozen=True)
class Target:
    base_url: str
    petition_id: int


def parse_petition_url(url: str) -> Target:
    found = re.match(r"^(https?://[^/]+)(?:/.*)?/petitions/(\d+)(?:[/?#].*)?$", url.strip())
    if not found:
        raise ClientError("Give the petition's address, like https://undersigned.example.org/petitions/42")
    return Target(base_url=found.group(1), petition_id=int(found.group(2)))


def parse_server_url(url: str) -> str:
    """The deployment's origin from any address on it."""
    found = re.match(r"^(https?://[^/?#]+)", url.strip())
    if not found:
        raise ClientError("Give the server's address, like https://undersigned.example.org")
    return found.group(1)


class Connection:
    """A signed-in side (cookies, kept in `jar_file` between runs when given) and a cookie-less side for
    everything anonymous: the bare opener has no cookie processor, so nothing it sends says who sends it."""

    def __init__(self, base_url: str, jar_file: Path | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.jar_file = jar_file
        self._jar: http.cookiejar.FileCookieJar = http.cookiejar.LWPCookieJar()
        if jar_file is not None and jar_file.exists():
            try:
                self._jar.load(str(jar_file), ignore_discard=True)
            except (OSError, http.cookiejar.LoadError):
                self._jar.clear()  # an unreadable jar only means signing in again
        self._signed_in = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self._jar))
        self._bare = urllib.request.build_opener()  # no cookie processor: nothing says who sends
        self._csrf: str | None = None

    def _call(
        self,
        opener: urllib.request.OpenerDirector,
        method: str,
        path: str,
        body: object | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Accept": "application/json", "Content-Type": "application/json", **(headers or {})},
        )
        try:
            with opener.open(request, timeout=60) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            error.close()
            try:
                return error.code, json.loads(raw)
            except ValueError:
                return error.code, {"error": {"message": raw.decode(errors="replace")[:200]}}
        except (urllib.error.URLError, OSError) as error:
            raise Unreachable(f"Cannot reach {self.base_url}: {getattr(error, 'reason', error)}") from None

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        headers = {}
        if method != "GET":
            if self._csrf is None:
                _status, answer = self._call(self._signed_in, "GET", "/api/v1/csrf")
                self._csrf = answer["csrf_token"]
            headers["X-CSRF-Token"] = self._csrf
        return self._call(self._signed_in, method, path, body, headers)

    def anonymous(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        return self._call(self._bare, method, path, body)

    def has_cookies(self) -> bool:
        host = re.sub(r"^https?://", "", self.base_url).split(":")[0].lower()
        # The jar files a cookie of a host without dots (localhost) under host.local.
        return any(cookie.domain.lstrip(".") in (host, host + ".local") for cookie in self._jar)

    def sign_in(self, email: str, password: str) -> None:
        status, answer = self.call("POST", "/api/v1/sessions", {"email": email, "password": password})
        if status != 200:
            raise ClientError(_message(answer, "Signing in failed."))
        self._csrf = None  # a new session: ask for a new token
        self.save_cookies()

    def save_cookies(self) -> None:
        """Write the jar beside the wallet, readable by its owner only, replaced whole."""
        if self.jar_file is None:
            return
        self.jar_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.jar_file.with_name(self.jar_file.name + ".tmp")
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        temporary.chmod(0o600)
        self._jar.save(str(temporary), ignore_discard=True)
        temporary.replace(self.jar_file)


def _message(answer: Any, default: str) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        fields = answer["error"].get("fields")
        details = "; ".join(f"{name}: {text}" for name, text in fields.items()) if isinstance(fields, dict) else ""
        return str(answer["error"].get("message") or default) + (f" ({details})" if details else "")
    return default


# The wallet file --------------------------------------------------------------------------------------------


def jar_path(wallet_file: Path) -> Path:
    return wallet_file.with_name(wallet_file.stem + ".cookies")


def load_wallet(path: Path) -> Wallet:
    if not path.exists():
        return {"version": WALLET_VERSION, "accounts": {}, "secrets": {}, "credentials": {}, "outbox": []}
    try:
        stored = json.loads(path.read_text())
    except ValueError:
        raise ClientError(f"{path} is not a wallet file (it is not JSON): leaving it as it is.") from None
    if stored.get("version") == WALLET_VERSION:
        stored.setdefault("secrets", {})  # a file from before wallet secrets
        return stored
    # The first format: a flat map "base|email|petition" -> signing token.
    credentials = {f"{slot}|sign": {**token, "purpose": "sign"} for slot, token in stored.items()}
    accounts = {slot.split("|")[0]: {"email": slot.split("|")[1]} for slot in stored if slot.count("|") == 2}
    return {"version": WALLET_VERSION, "accounts": accounts, "secrets": {}, "credentials": credentials, "outbox": []}


def save_wallet(path: Path, wallet: Wallet) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(json.dumps(wallet, indent=1, sort_keys=True))
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One command at a time changes the wallet: `client send --wait` may be running while `client sign`
    queues, and each rewrites the whole file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def known_email(wallet: Wallet, base_url: str) -> str | None:
    return wallet["accounts"].get(base_url.rstrip("/"), {}).get("email")


def _slot(base_url: str, email: str, petition_id: int, purpose: str) -> str:
    return f"{base_url}|{email.lower()}|{petition_id}|{purpose}"


# The wallet secret, one per server and account -------------------------------------------------------------


def _account(base_url: str, email: str) -> str:
    return f"{base_url.rstrip('/')}|{email.lower()}"


def wallet_secret(wallet: Wallet, base_url: str, email: str) -> bytes | None:
    """The wallet secret this file holds for the account, or None."""
    kept = wallet["secrets"].get(_account(base_url, email))
    return _b64d(kept["secret"]) if kept else None


def keep_secret(wallet: Wallet, base_url: str, email: str, secret: bytes) -> None:
    """Hold this secret as the account's wallet (its check kept beside it, to compare with the server's)."""
    wallet["secrets"][_account(base_url, email)] = {"secret": _b64e(secret), "check": _b64e(derive.check(secret))}


def forget_secret(wallet: Wallet, base_url: str, email: str) -> None:
    wallet["secrets"].pop(_account(base_url, email), None)


def secret_accounts(wallet: Wallet) -> list[tuple[str, str]]:
    """(server, email) of every account this file holds a wallet secret for."""
    return [(server, email) for server, email in (account.rsplit("|", 1) for account in sorted(wallet["secrets"]))]


ELSEWHERE = (
    "This account's wallet was started on another device, and this wallet file does not hold it, so it "
    "cannot collect the account's credentials. Bring it here with its recovery code (`undersigned client "
    "wallet import`; the other device shows the code on its Your wallet page, /wallet), or link this "
    "computer to that device. To sign with your name without the token, add --forfeit to `client sign`: "
    "you then give up signing that petition anonymously."
)
NOT_THIS_WALLET = (
    "The wallet secret this file holds for {email} is not the account's wallet (the server knows "
    "another one): nothing was collected. Import the account's recovery code with `undersigned "
    "client wallet import`."
)
RECOVERY_CODE_NOTE = (
    "This recovery code is your wallet for {email} on {server}: whoever has it can rebuild your "
    "anonymous credentials and sign or comment anonymously in your place, so keep it like a "
    "password (on paper, or in a password manager). The server never sees it and cannot give it "
    "back: if you lose it and every device that holds the wallet, you can still sign with your "
    "name, giving up anonymity for that petition."
)


def subject_of(item: dict[str, Any]) -> int:
    """What a wallet item is for: the poll for a ballot credential, the petition for every other."""
    return int(item["ballot_id"] if item.get("purpose") == "ballot" else item["petition_id"])


def _about(purpose: str, subject: int) -> dict[str, int]:
    return {"ballot_id": subject} if purpose == "ballot" else {"petition_id": subject}


def wallet_state(session: Session, purposes: tuple[str, ...] = PURPOSES) -> dict[str, Any]:
    query = "" if purposes == PURPOSES else "?purposes=" + ",".join(purposes)
    status, state = session.call("GET", "/api/v1/wallet" + query)
    if status != 200 or not isinstance(state, dict):
        raise ClientError(_message(state, "Could not read your wallet."))
    return state


def register_secret(session: Session, secret: bytes) -> None:
    """Tell the server this account's wallet exists (its check value, never the secret)."""
    status, answer = session.call("POST", "/api/v1/wallet/check", {"check": _b64e(derive.check(secret))})
    if status == 409:
        raise WalletElsewhere(ELSEWHERE)
    if status not in (200, 201):
        raise ClientError(_message(answer, "The server did not record your wallet."))


def import_code(session: Session, wallet: Wallet, code: str) -> bool:
    """Keep the secret a recovery code carries as this account's wallet, once its check matches the account's.
    Returns False when the file held it already. A typo, or another account's code, is refused in words."""
    try:
        secret = derive.parse_recovery_code(code)
    except derive.RecoveryCodeError as error:
        raise ClientError(f"{error} Nothing was changed.") from None
    base_url, email = session.connection.base_url, session.email
    check = wallet_state(session).get("wallet_check")
    if check is None:
        raise ClientError(
            f"The account {email} has no wallet yet, so this code is not its recovery code (it belongs "
            "to another account, or another server). Nothing was changed; `undersigned client collect` "
            "starts this account's wallet."
        )
    if not derive.matches(secret, _b64d(check)):
        raise ClientError(
            f"This recovery code is a valid code, but of another wallet, not of the account {email} on "
            f"{base_url}. Nothing was changed: check that you are signed in as the right person."
        )
    if wallet_secret(wallet, base_url, email) == secret:
        return False
    keep_secret(wallet, base_url, email, secret)  # credentials noted as elsewhere are tried again by `collect`
    return True


# Signing in, once ------------------------------------------------------------------------------------------


class Session:
    """The signed-in side for one account: the session kept from an earlier run when it still works, a sign-in
    (asking for the password only then) when there is none or it expired."""

    def __init__(self, connection: Connection, wallet: Wallet, *, email: str, password: Callable[[], str]) -> None:
        self.connection = connection
        self.wallet = wallet
        self.email = email
        self._password = password
        self.signed_in_now = False  # a sign-in in this run: an anonymous action now would follow it within seconds
        self._ready = False

    def _sign_in(self) -> None:
        self.connection.sign_in(self.email, self._password())
        self.wallet["accounts"][self.connection.base_url] = {"email": self.email.lower()}
        self.signed_in_now = True
        self._ready = True

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        if not self._ready:
            stored = known_email(self.wallet, self.connection.base_url)
            if stored != self.email.lower() or not self.connection.has_cookies():
                self._sign_in()
            self._ready = True
        status, answer = self.connection.call(method, path, body)
        if status == 401 and not self.signed_in_now:  # the session kept from before has expired
            self._sign_in()
            status, answer = self.connection.call(method, path, body)
        return status, answer


# Collecting credentials ------------------------------------------------------------------------------------


@dataclass
class Collected:
    """What `collect` did: credentials newly held, those held elsewhere (another device collected them before the
    account had a wallet secret: they stay there), and whether it started the account's wallet."""

    held: list[tuple[int, str]]
    elsewhere: list[tuple[int, str]]
    started: bool = False


def collect(
    session: Session,
    wallet: Wallet,
    *,
    keys: KeyRequirement,
    save: Callable[[], None] = lambda: None,
    purposes: tuple[str, ...] = PURPOSES,
) -> Collected:
    """Every credential the account has or is due, in this wallet: finalize the replies kept for it (blinded
    here before, or by another device of the same wallet), then ask for every credential due in one request,
    each derived from the wallet secret, each key checked before anything is blinded against it or finalized.

    No secret here and none on the account: one is made, saved, registered, and used. No secret here and the
    account has one: refused in words (import its recovery code, or link this computer)."""
    connection, email = session.connection, session.email
    base_url = connection.base_url
    state = wallet_state(session, purposes)
    done = Collected(held=_finalize(base_url, wallet, email, state["issued"]), elsewhere=[])
    missing = [item for item in state["issued"] if not _holds(wallet, base_url, email, item)]
    due = state["due"]
    if not due and not missing:
        return done
    for key in [*due, *missing]:  # every key first: a refusal sends nothing at all
        keys.require(
            petition_id=subject_of(key),  # a poll's id for a ballot key
            purpose=key.get("purpose", "sign"),
            key_id=key["key_id"],
            spki=key.get("spki") or "",
        )
    secret = wallet_secret(wallet, base_url, email)
    check = state.get("wallet_check")
    if secret is None and check is not None:
        raise WalletElsewhere(ELSEWHERE)
    if secret is not None and check is not None and not derive.matches(secret, _b64d(check)):
        raise ClientError(NOT_THIS_WALLET.format(email=email))
    if check is None:  # the account has no wallet yet: this file's, or a new one
        if secret is None:
            secret = derive.new_secret()
            keep_secret(wallet, base_url, email, secret)
            save()  # kept before the server hears of it: a lost answer only means registering it again
            done.started = True
        try:
            register_secret(session, secret)
        except ClientError:
            if done.started:  # another device won the race: this one has no wallet
                forget_secret(wallet, base_url, email)
                save()
            raise
    assert secret is not None  # this file's, or made just now: a secret held only elsewhere was refused above
    for item in missing:
        _take_kept(wallet, base_url, email, secret, item, done)
    if not due:
        return done
    requests, derived = [], {}
    for key in due:
        purpose = key.get("purpose", "sign")
        public = blindrsa.PublicKey.from_spki(_b64d(key["spki"]))
        about = _about(purpose, subject_of(key))
        credential = derive.credential(secret, purpose=purpose, key_id=key["key_id"], public=public, **about)
        derived[(subject_of(key), purpose)] = (key, public, credential)
        request: dict[str, object] = {**about, "blinded_message": _b64e(credential.blinded_msg)}
        if "purpose" in key:  # a server from before discussion credentials knows no such field
            request["purpose"] = purpose
        requests.append(request)
    status, answer = session.call("POST", "/api/v1/wallet/tokens", {"tokens": requests})
    if status == 409:
        # Another device of this wallet asked a moment before with the same requests: its replies are kept.
        state = wallet_state(session)
        for item in state["issued"]:
            if not _holds(wallet, base_url, email, item) and (subject_of(item), item.get("purpose", "sign")) in derived:
                _take_kept(wallet, base_url, email, secret, item, done)
        if state["due"]:
            raise ClientError(_message(answer, "The server did not issue credentials."))
        return done
    if status != 200:
        raise ClientError(_message(answer, "The server did not issue credentials."))
    for item in answer["tokens"]:
        key, public, credential = derived[(subject_of(item), item.get("purpose", "sign"))]
        _hold(wallet, base_url, email, key, credential, credential.finalize(public, _b64d(item["blind_signature"])))
        done.held.append((subject_of(item), item.get("purpose", "sign")))
    return done


def _holds(wallet: Wallet, base_url: str, email: str, item: dict[str, Any]) -> bool:
    """This file has (or had, and used) the credential of this issued item: nothing to collect again."""
    credential = wallet["credentials"].get(_slot(base_url, email, subject_of(item), item.get("purpose", "sign")))
    return credential is not None and credential["status"] not in ("blinded", "lost", "elsewhere")


def _take_kept(wallet: Wallet, base_url: str, email: str, secret: bytes, item: dict[str, Any], done: Collected) -> None:
    """Finalize a reply the server kept with the credential derived from the secret; a reply that does not
    finalize was for a random credential of a wallet from before secrets, held on another device: noted."""
    purpose = item.get("purpose", "sign")
    public = blindrsa.PublicKey.from_spki(_b64d(item["spki"]))
    credential = derive.credential(
        secret, purpose=purpose, key_id=item["key_id"], public=public, **_about(purpose, subject_of(item))
    )
    try:
        signature = credential.finalize(public, _b64d(item["blind_signature"]))
    except blindrsa.BlindSignatureError:
        slot = _slot(base_url, email, subject_of(item), purpose)
        wallet["credentials"][slot] = {
            "petition_id": item["petition_id"],
            "purpose": purpose,
            "key_id": item["key_id"],
            "spki": item["spki"],
            "status": "elsewhere",
        }
        done.elsewhere.append((subject_of(item), purpose))
        return
    _hold(wallet, base_url, email, item, credential, signature)
    done.held.append((subject_of(item), purpose))


def _hold(
    wallet: Wallet, base_url: str, email: str, key: dict[str, Any], credential: derive.Credential, signature: bytes
) -> None:
    purpose = key.get("purpose", "sign")
    wallet["credentials"][_slot(base_url, email, subject_of(key), purpose)] = {
        "petition_id": key["petition_id"],
        **({"ballot_id": key["ballot_id"]} if purpose == "ballot" else {}),
        "purpose": purpose,
        "key_id": key["key_id"],
        "spki": key["spki"],
        "message": _b64e(credential.message),
        "signature": _b64e(signature),
        "status": "held",
        "derived": True,
    }


def _finalize(base_url: str, wallet: Wallet, email: str, issued: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Replies to random credentials blinded by this file before wallets had a secret (kept with their `inv`)."""
    done = []
    for item in issued:
        purpose = item.get("purpose", "sign")
        held = wallet["credentials"].get(_slot(base_url, email, subject_of(item), purpose))
        if not held or held["status"] != "blinded" or held["key_id"] != item["key_id"]:
            continue
        public = blindrsa.PublicKey.from_spki(_b64d(held["spki"]))
        try:
            signature = blindrsa.finalize(
                public, _b64d(held["message"]), _b64d(item["blind_signature"]), int(held["inv"])
            )
        except blindrsa.BlindSignatureError:
            held["status"] = "lost"
            continue
        held.update(signature=_b64e(signature), status="held")
        held.pop("inv", None)
        done.append((item["petition_id"], purpose))
    return done


def held(wallet: Wallet, base_url: str, email: str | None, petition_id: int, purpose: str) -> dict[str, Any] | None:
    """This petition's credential of that purpose, for the account given or else any account of this wallet."""
    for slot, credential in wallet["credentials"].items():
        base, owner, number, kind = slot.rsplit("|", 3)
        if (
            base == base_url
            and int(number) == petition_id
            and kind == purpose
            and (email is None or owner == email.lower())
        ):
            return credential
    return None


def slot_of(wallet: Wallet, credential: dict[str, Any]) -> str:
    return next(slot for slot, value in wallet["credentials"].items() if value is credential)


# Queueing and sending anonymous actions ---------------------------------------------------------------------

WHY = "so that the moment it arrives cannot be matched with your sign-in"
NOW_WARNING = (
    "Sending now lets the server match this {what} with your sign-in moments ago; your anonymity then "
    "rests on others signing in the same minutes."
)
JUST_SIGNED_IN = (
    "You signed in seconds ago in this same run: this anonymous request follows a signed-in request "
    "from this computer within seconds."
)


def pseudonym(message_b64: str) -> str:
    """The name an anonymous comment carries, from the credential's secret message: only its holder can make it."""
    return "Colleague " + hashlib.sha256(b"undersigned/pseudonym/v1" + _b64d(message_b64)).hexdigest()[:6]


def due_time(now: float, within_hours: float) -> float:
    """A moment drawn uniformly between a sixth of the window and its end (2 to 12 hours by default)."""
    return random.SystemRandom().uniform(now + within_hours * 3600 / 6, now + within_hours * 3600)


def when(due: float, now: float) -> str:
    local = datetime.fromtimestamp(due).astimezone()
    minutes = max(0, round((due - now) / 60))
    span = f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
    return f"{local:%a %d %b at %H:%M %Z} (in {span})"


def enqueue(
    wallet: Wallet,
    *,
    kind: str,
    base_url: str,
    petition_id: int,
    credential: dict[str, Any],
    now: float,
    within_hours: float,
    **details: Any,
) -> dict[str, Any]:
    item = {
        "id": secrets.token_hex(6),
        "kind": kind,
        "base_url": base_url,
        "petition_id": petition_id,
        "slot": slot_of(wallet, credential),
        "due": due_time(now, within_hours),
        **details,
    }
    wallet["outbox"].append(item)
    return item


def sign(
    *,
    wallet: Wallet,
    base_url: str,
    email: str | None,
    petition_id: int,
    session: Session | None,
    visibility: str,
    now: float,
    within_hours: float,
    forfeit: bool = False,
) -> tuple[str, dict[str, Any] | None]:
    """Sign with the petition's token: anonymously (queued, and the queued action returned: nothing is sent
    now) or with a name (now, signed in: the token is spent). `forfeit`: with a name, without the token when this
    wallet does not hold it, giving up signing the petition anonymously (a token held here is spent instead)."""
    token = held(wallet, base_url, email, petition_id, "sign")
    if token is not None and token["status"] in SPENT_OR_SENT:
        if token["status"] == "queued":
            item = next(entry for entry in wallet["outbox"] if entry["slot"] == slot_of(wallet, token))
            return f"Your anonymous signature is already queued: it will be sent {when(item['due'], now)}.", None
        raise ClientError(
            "You already signed this petition with this wallet"
            + (": `client check` confirms it is published." if token["status"] != "spent" else ".")
        )
    if token is not None and token["status"] == "elsewhere" and (visibility == "anonymous" or not forfeit):
        raise ClientError(
            "This petition's token was collected by another device of yours before your wallet had a "
            "secret, so only that device holds it: sign from there. "
            + (
                "Or sign with your name here with --forfeit, giving up signing it anonymously."
                if visibility == "anonymous"
                else "Or add --forfeit to sign with your name here, giving up signing it anonymously."
            )
        )
    if visibility != "anonymous" and forfeit and (token is None or token["status"] != "held"):
        return _forfeit(session, petition_id, visibility)
    if token is None or token["status"] != "held":
        raise ClientError(
            "You hold no usable token for this petition: it may not take anonymous signatures, or "
            "you signed it already. If your token is on a device you do not have here, add --forfeit "
            "to sign with your name, giving up signing this petition anonymously."
        )
    if visibility == "anonymous":
        item = enqueue(
            wallet,
            kind="signature",
            base_url=base_url,
            petition_id=petition_id,
            credential=token,
            now=now,
            within_hours=within_hours,
        )
        token["status"] = "queued"
        return (
            f"Queued: your anonymous signature will be sent {when(item['due'], now)}, {WHY}. Run "
            "`undersigned client send` then (from cron or a systemd timer, or leave `client send --wait` "
            "running): it does not sign in and sends no cookie."
        ), item
    if session is None:
        raise ClientError("Signing with your name needs your account: give --email.")
    status, answer = session.call(
        "POST",
        f"/api/v1/petitions/{petition_id}/signature",
        {"visibility": visibility, "token": {"message": token["message"], "signature": token["signature"]}},
    )
    if status != 201:
        raise ClientError(_message(answer, "The signature was refused."))
    token["status"] = "spent"
    return "Signed with your name " + (
        "shown to everyone." if visibility == "public" else "shown to the organizers only."
    ) + (" This wallet held the token, so it was spent and nothing was given up." if forfeit else ""), None


def _forfeit(session: Session | None, petition_id: int, visibility: str) -> tuple[str, None]:
    if session is None:
        raise ClientError("Signing with your name needs your account: give --email.")
    # Whether a token was issued (and so is given up now): the kept replies list it while it is unused.
    issued = any(
        item["petition_id"] == petition_id and item.get("purpose", "sign") == "sign"
        for item in wallet_state(session)["issued"]
    )
    status, answer = session.call(
        "POST", f"/api/v1/petitions/{petition_id}/signature", {"visibility": visibility, "forfeit": True}
    )
    if status != 201:
        raise ClientError(_message(answer, "The signature was refused."))
    return (
        "Signed with your name "
        + ("shown to everyone." if visibility == "public" else "shown to the organizers only.")
        + (
            " You gave up signing this petition anonymously: the signature log counts one forfeit, without your name."
            if issued
            else ""
        )
    ), None


def comment(
    *,
    wallet: Wallet,
    base_url: str,
    email: str | None,
    petition_id: int,
    text: str,
    reply_to: int | None,
    now: float,
    within_hours: float,
) -> tuple[dict[str, Any], str]:
    """Queue an anonymous comment under the petition's discussion credential; returns it and its pseudonym."""
    credential = _discussion_credential(wallet, base_url, email, petition_id)
    if not text.strip():
        raise ClientError("The comment is empty: give its text with --text.")
    item = enqueue(
        wallet,
        kind="comment",
        base_url=base_url,
        petition_id=petition_id,
        credential=credential,
        now=now,
        within_hours=within_hours,
        body=text,
        parent_id=reply_to,
    )
    return item, pseudonym(credential["message"])


def change_comment(
    *,
    wallet: Wallet,
    base_url: str,
    email: str | None,
    petition_id: int,
    comment_id: int,
    text: str | None,
    now: float,
    within_hours: float,
) -> dict[str, Any]:
    """Queue the edit (new text) or the deletion (no text) of an anonymous comment this wallet's credential wrote."""
    credential = _discussion_credential(wallet, base_url, email, petition_id)
    if text is not None and not text.strip():
        raise ClientError("The new text is empty: to remove the comment, use `client delete-comment`.")
    details: dict[str, Any] = {"comment_id": comment_id} if text is None else {"comment_id": comment_id, "body": text}
    return enqueue(
        wallet,
        kind="delete" if text is None else "edit",
        base_url=base_url,
        petition_id=petition_id,
        credential=credential,
        now=now,
        within_hours=within_hours,
        **details,
    )


def _discussion_credential(wallet: Wallet, base_url: str, email: str | None, petition_id: int) -> dict[str, Any]:
    credential = held(wallet, base_url, email, petition_id, "discuss")
    if credential is None or credential["status"] != "held":
        raise ClientError(
            "You hold no discussion credential for this petition: it may not take anonymous "
            "comments, or this server does not give discussion credentials yet. Run "
            "`undersigned client collect URL` first."
        )
    return credential


Sender = Callable[["Connection", Wallet, dict[str, Any], "KeyRequirement"], tuple[str, str]]


def send_due(
    wallet: Wallet,
    *,
    now: float,
    keys: Callable[[Connection], KeyRequirement],
    only: str | None = None,
    skip: set[str] | frozenset[str] = frozenset(),
    senders: Mapping[str, Sender] | None = None,
) -> tuple[list[str], set[str]]:
    """Send every queued action whose time has come (or just the one with id `only`), each over the cookie-less
    connection after its key is checked again. Returns what happened, in words, and the ids not sent: those the
    server refused leave the queue, the others (unreachable, a key that differs, a poll's exchange waiting for the
    server's batch) stay for the next run. `senders`
    sends the kinds of action other modules queue (a poll's answer: app/clients/answer.py's SENDERS)."""
    lines: list[str] = []
    failed: set[str] = set()
    checks: dict[str, KeyRequirement] = {}
    for item in sorted(wallet["outbox"], key=lambda entry: entry["due"]):
        if item["id"] in skip or (only is None and item["due"] > now) or (only is not None and item["id"] != only):
            continue
        connection = Connection(item["base_url"])  # no jar: this connection could not send a cookie if it tried
        if item["base_url"] not in checks:
            checks[item["base_url"]] = keys(connection)
        try:
            sender = (senders or {}).get(item["kind"], _send)
            line, outcome = sender(connection, wallet, item, checks[item["base_url"]])
        except ClientError as error:
            line, outcome = f"Not sent: {error}", "kept"
        lines.append(line)
        # "waiting": taken by the server for its next batch (a poll's exchange), due again later; not a failure.
        if outcome not in ("kept", "waiting"):
            wallet["outbox"].remove(item)
        if outcome not in ("sent", "waiting"):
            failed.add(item["id"])
    return lines, failed


def _send(connection: Connection, wallet: Wallet, item: dict[str, Any], keys: KeyRequirement) -> tuple[str, str]:
    """Returns a line for the person and the outcome: "sent", "refused" (by the server) or "kept" (queued)."""
    credential = wallet["credentials"].get(item["slot"])
    petition = f"petition {item['petition_id']} ({item['base_url']})"
    if credential is None or "signature" not in credential:
        return f"Dropped a queued action on {petition}: its credential is no longer in this wallet.", "refused"
    keys.require(
        petition_id=item["petition_id"],
        purpose=credential["purpose"],
        key_id=credential["key_id"],
        spki=credential["spki"],
    )
    proof = {"message": credential["message"], "signature": credential["signature"]}
    if item["kind"] == "signature":
        signer = _signer_request(connection, wallet, item["slot"], keys)
        body: dict[str, object] = {"petition_id": item["petition_id"], **proof}
        if signer is not None:
            body["signer_blinded"] = _b64e(signer[1].blinded_msg)
        status, answer = connection.anonymous("POST", "/api/v1/anonymous/signatures", body)
        if status == 202 and signer is not None:
            _keep_signer(wallet, item["slot"], signer, credential, (answer or {}).get("signer_blind_signature"))
        if status == 202 or status == 409:
            credential["status"] = "submitted"
            minutes = max(1, round(float((answer or {}).get("publish_within_seconds", 60)) / 60))
            return (
                f"Sent your anonymous signature on {petition}: it appears within {minutes} minute(s). "
                "Confirm it with `client check`."
                if status == 202
                else f"Your anonymous signature on {petition} was already with the server: `client check` confirms it."
            ), "sent"
    elif item["kind"] == "comment":
        status, answer = connection.anonymous(
            "POST",
            "/api/v1/anonymous/comments",
            {"petition_id": item["petition_id"], **proof, "body": item["body"], "parent_id": item.get("parent_id")},
        )
        if status == 202:
            minutes = max(1, round(float(answer.get("publish_within_seconds", 60)) / 60))
            name = answer.get("pseudonym") or pseudonym(credential["message"])
            mismatch = (
                ""
                if name == pseudonym(credential["message"])
                else f" (the server named it {name}, not {pseudonym(credential['message'])}: it does not follow "
                "the published rule)"
            )
            return (
                f"Sent your anonymous comment on {petition} as {pseudonym(credential['message'])}{mismatch}: "
                f"it appears within {minutes} minute(s)."
            ), "sent"
    elif item["kind"] == "edit":
        status, answer = connection.anonymous(
            "POST", f"/api/v1/anonymous/comments/{item['comment_id']}/edit", {**proof, "body": item["body"]}
        )
        if status in (200, 202):
            return (
                f"Edited comment {item['comment_id']} on {petition}"
                + (": the change is applied with the next hourly batch." if status == 202 else ".")
            ), "sent"
    else:
        # The server takes the message alone here: only the author's wallet holds it (the signature proves
        # nothing more, and would be refused as an unexpected field).
        status, answer = connection.anonymous(
            "POST", f"/api/v1/anonymous/comments/{item['comment_id']}/delete", {"message": proof["message"]}
        )
        if status in (200, 202):
            return (
                f"Deleted comment {item['comment_id']} on {petition}"
                + (": it goes with the next hourly batch." if status == 202 else ".")
            ), "sent"
    if status >= 500:
        return f"Not sent: {petition} answered {status}; it stays queued for the next run.", "kept"
    if item["kind"] == "signature":
        credential["status"] = "held"  # refused, not spent: `client sign` can queue it again
    return f"Refused by {petition}: {_message(answer, f'the server answered {status}')}", "refused"


# The signer credential, asked for with an anonymous signature (issue #25) -------------------------------------


def _signer_request(
    connection: Connection, wallet: Wallet, slot: str, keys: KeyRequirement
) -> tuple[dict[str, Any], derive.Credential] | None:
    """The petition's signer key (the one published to everyone and named by entry 0) and the signer credential
    derived for it from the wallet secret; None when the wallet has no secret, the petition publishes no signer key,
    or its key does not pass the check (the signature goes without: it needs none)."""
    base_url, email, petition_text, _purpose = slot.rsplit("|", 3)
    secret = wallet_secret(wallet, base_url, email)
    if secret is None:
        return None
    status, published = connection.anonymous("GET", "/api/v1/anonymous/keys")
    if status != 200 or not isinstance(published, list):
        return None
    found = [
        key
        for key in published
        if isinstance(key, dict) and key.get("purpose") == "signer" and key.get("petition_id") == int(petition_text)
    ]
    if len(found) != 1:
        return None
    key = found[0]
    try:
        keys.require(petition_id=int(petition_text), purpose="signer", key_id=key["key_id"], spki=key["spki"])
        public = blindrsa.PublicKey.from_spki(_b64d(key["spki"]))
    except (ClientError, ValueError, blindrsa.BlindSignatureError):
        return None
    credential = derive.credential(
        secret, purpose="signer", petition_id=int(petition_text), key_id=key["key_id"], public=public
    )
    return key, credential


def _keep_signer(
    wallet: Wallet,
    token_slot: str,
    signer: tuple[dict[str, Any], derive.Credential],
    token: dict[str, Any],
    reply: str | None,
) -> None:
    """Hold the signer credential (the reply came with the 202), or note where to fetch its reply once the
    signature is published (the token's nullifier, and the key it is under)."""
    key = signer[0]
    base_url, email, petition_text, _purpose = token_slot.rsplit("|", 3)
    kept: dict[str, Any] = {
        "petition_id": int(petition_text),
        "purpose": "signer",
        "key_id": key["key_id"],
        "spki": key["spki"],
        "nullifier": hashlib.sha256(_b64d(token["message"])).hexdigest(),
        "status": "awaiting",
        "derived": True,
    }
    wallet["credentials"][_slot(base_url, email, int(petition_text), "signer")] = kept
    if reply:
        _finish_signer(wallet, base_url, email, kept, reply)


def _finish_signer(wallet: Wallet, base_url: str, email: str, kept: dict[str, Any], reply: str) -> bool:
    secret = wallet_secret(wallet, base_url, email)
    if secret is None:
        return False
    public = blindrsa.PublicKey.from_spki(_b64d(kept["spki"]))
    credential = derive.credential(
        secret, purpose="signer", petition_id=kept["petition_id"], key_id=kept["key_id"], public=public
    )
    try:
        signature = credential.finalize(public, _b64d(reply))
    except blindrsa.BlindSignatureError:
        return False
    kept.update(message=_b64e(credential.message), signature=_b64e(signature), status="held")
    kept.pop("nullifier", None)
    return True


def fetch_signer_reply(connection: Connection, wallet: Wallet, base_url: str, email: str, petition_id: int) -> bool:
    """An awaiting signer credential: fetch its kept reply without cookies (once the signature is written) and
    finalize it. True when it is held now."""
    kept = held(wallet, base_url, email, petition_id, "signer")
    if kept is None or kept.get("status") != "awaiting":
        return kept is not None and kept.get("status") == "held"
    status, answer = connection.anonymous("GET", f"/api/v1/petitions/{petition_id}/signer-replies/{kept['nullifier']}")
    if status != 200 or not isinstance(answer, dict):
        return False
    return _finish_signer(wallet, base_url, email, kept, answer["blind_signature"])


def pending(wallet: Wallet, *, skip: set[str] | frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    return sorted((item for item in wallet["outbox"] if item["id"] not in skip), key=lambda item: item["due"])


# Confirming a signature is published ----------------------------------------------------------------------


def check(*, connection: Connection, wallet: Wallet, petition_id: int, keys: KeyRequirement) -> list[str]:
    """Look for each submitted token of this petition among its published entries; send a missing one again."""
    lines = []
    for slot, token in wallet["credentials"].items():
        if (
            not slot.startswith(connection.base_url + "|")
            or token["petition_id"] != petition_id
            or token.get("purpose", "sign") != "sign"
            or token["status"] not in ("submitted", "published")
        ):
            continue
        if token["status"] == "published" or _published(connection, petition_id, token["message"]):
            # Counted: the message is forgotten, so this file no longer ties you to the published entry.
            for secret in ("message", "signature", "spki"):
                token.pop(secret, None)
            token["status"] = "published"
            lines.append("Your anonymous signature is published and counted.")
            _base, owner, _number, _kind = slot.rsplit("|", 3)
            awaiting = held(wallet, connection.base_url, owner, petition_id, "signer")
            if (
                awaiting is not None
                and awaiting.get("status") == "awaiting"
                and fetch_signer_reply(connection, wallet, connection.base_url, owner, petition_id)
            ):
                lines.append("Your signer credential, for polls among this petition's signers, is in the wallet.")
            continue
        keys.require(petition_id=petition_id, purpose="sign", key_id=token["key_id"], spki=token["spki"])
        status, answer = connection.anonymous(
            "POST",
            "/api/v1/anonymous/signatures",
            {"petition_id": petition_id, "message": token["message"], "signature": token["signature"]},
        )
        lines.append(
            "Not published yet; sent again."
            if status == 202
            else "Not published yet; the server holds it for the next batch."
            if status == 409
            else _message(answer, "Not published, and the server refused it again.")
        )
    if any(
        item["petition_id"] == petition_id and item["kind"] == "signature" and item["base_url"] == connection.base_url
        for item in wallet["outbox"]
    ):
        lines.append("Your anonymous signature is still queued in this wallet: `client send` sends it when due.")
    return lines or ["No anonymous signature of yours for this petition in this wallet."]


def _published(connection: Connection, petition_id: int, message: str) -> bool:
    cursor = ""
    while True:
        status, ledger = connection.anonymous(
            "GET",
            f"/api/v1/petitions/{petition_id}/anonymous-signatures?limit=5000"
            + (f"&cursor={cursor}" if cursor else ""),
        )
        if status != 200:
            raise ClientError(_message(ledger, "Could not read the petition's published signatures."))
        if any(entry["message"] == message for entry in ledger["entries"]):
            return True
        if not ledger["next_cursor"]:
            return False
        cursor = ledger["next_cursor"]
