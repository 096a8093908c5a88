"""The command-line wallet: the same protocol as the browser's, for people who do not trust a web page.

`undersigned client sign URL --anonymous` signs in, collects a token for every open petition due (one bundled
request), and sends the petition's token without any cookie; `undersigned client check URL` looks for it in the
petition's published entries and sends it again if it is missing. Tokens live in a local JSON file.
Standard library HTTP only, so the command needs nothing beyond the package itself.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core import blindrsa
from app.core.b64url import decode as _b64d
from app.core.b64url import encode as _b64e

Wallet = dict[str, dict[str, Any]]


class ClientError(Exception):
    """What went wrong, in words for the person at the terminal."""


@dataclass(frozen=True)
class Target:
    base_url: str
    petition_id: int


def parse_petition_url(url: str) -> Target:
    found = re.match(r"^(https?://[^/]+)(?:/.*)?/petitions/(\d+)(?:[/?#].*)?$", url.strip())
    if not found:
        raise ClientError("Give the petition's address, like https://undersigned.example.org/petitions/42")
    return Target(base_url=found.group(1), petition_id=int(found.group(2)))


class Connection:
    """A signed-in session (cookies kept in memory only) and a cookie-less opener for anonymous requests."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._jar = http.cookiejar.CookieJar()
        self._signed_in = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self._jar))
        self._bare = urllib.request.build_opener()  # no cookie processor: nothing says who sends
        self._csrf: str | None = None

    def _call(self, opener: urllib.request.OpenerDirector, method: str, path: str, body: object | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Accept": "application/json", "Content-Type": "application/json",
                                                  **(headers or {})})
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
        except urllib.error.URLError as error:
            raise ClientError(f"Cannot reach {self.base_url}: {error.reason}") from None

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

    def sign_in(self, email: str, password: str) -> None:
        status, answer = self.call("POST", "/api/v1/sessions", {"email": email, "password": password})
        if status != 200:
            raise ClientError(_message(answer, "Signing in failed."))
        self._csrf = None  # a new session: ask for a new token


def _message(answer: Any, default: str) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return str(answer["error"].get("message") or default)
    return default


def load_wallet(path: Path) -> Wallet:
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def save_wallet(path: Path, wallet: Wallet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(wallet, indent=1, sort_keys=True))
    temporary.chmod(0o600)
    temporary.replace(path)


def _slot(base_url: str, email: str, petition_id: int) -> str:
    return f"{base_url}|{email.lower()}|{petition_id}"


def collect_tokens(connection: Connection, wallet: Wallet, email: str) -> int:
    """Finalize any reply missed before, then ask for every token due in one request. Returns new tokens."""
    status, state = connection.call("GET", "/api/v1/wallet")
    if status != 200:
        raise ClientError(_message(state, "Could not read your wallet."))
    collected = _finalize(connection, wallet, email, state["issued"])
    due = state["due"]
    if not due:
        return collected
    requests = []
    for key in due:
        public = blindrsa.PublicKey.from_spki(_b64d(key["spki"]))
        if public.key_id() != key["key_id"]:
            raise ClientError(f"Petition {key['petition_id']}'s key does not match its published id.")
        message = blindrsa.prepare(secrets.token_bytes(32))
        blinded = blindrsa.blind(public, message)
        wallet[_slot(connection.base_url, email, key["petition_id"])] = {
            "petition_id": key["petition_id"], "key_id": key["key_id"], "spki": key["spki"],
            "message": _b64e(message), "inv": str(blinded.inv), "status": "blinded"}
        requests.append({"petition_id": key["petition_id"], "blinded_message": _b64e(blinded.blinded_msg)})
    status, answer = connection.call("POST", "/api/v1/wallet/tokens", {"tokens": requests})
    if status != 200:
        raise ClientError(_message(answer, "The server did not issue tokens."))
    return collected + _finalize(connection, wallet, email, answer["tokens"])


def _finalize(connection: Connection, wallet: Wallet, email: str, issued: list[dict[str, Any]]) -> int:
    done = 0
    for item in issued:
        token = wallet.get(_slot(connection.base_url, email, item["petition_id"]))
        if not token or token["status"] != "blinded" or token["key_id"] != item["key_id"]:
            continue
        public = blindrsa.PublicKey.from_spki(_b64d(token["spki"]))
        try:
            signature = blindrsa.finalize(public, _b64d(token["message"]), _b64d(item["blind_signature"]),
                                          int(token["inv"]))
        except blindrsa.BlindSignatureError:
            token["status"] = "lost"
            continue
        token.update(signature=_b64e(signature), status="held")
        token.pop("inv", None)
        done += 1
    return done


def sign(*, connection: Connection, wallet: Wallet, email: str, petition_id: int, visibility: str) -> str:
    """Sign with the petition's token: anonymously (no cookie sent) or with a name (the token is spent)."""
    token = wallet.get(_slot(connection.base_url, email, petition_id))
    if token is not None and token["status"] in ("submitted", "published", "spent"):
        raise ClientError("You already signed this petition with this wallet"
                          + (": `client check` confirms it is published." if token["status"] != "spent" else "."))
    if token is None or token["status"] != "held":
        raise ClientError("You hold no usable token for this petition: it may not take anonymous signatures, or "
                          "you signed it already, or a token was issued to you in another browser.")
    body = {"message": token["message"], "signature": token["signature"]}
    if visibility == "anonymous":
        status, answer = connection.anonymous("POST", "/api/v1/anonymous/signatures",
                                              {"petition_id": petition_id, **body})
        if status != 202:
            raise ClientError(_message(answer, "The signature was refused."))
        token["status"] = "submitted"
        minutes = max(1, round(float(answer["publish_within_seconds"]) / 60))
        return f"Queued: your anonymous signature will appear within {minutes} minute(s). Check with `client check`."
    status, answer = connection.call("POST", f"/api/v1/petitions/{petition_id}/signature",
                                     {"visibility": visibility, "token": body})
    if status != 201:
        raise ClientError(_message(answer, "The signature was refused."))
    token["status"] = "spent"
    return "Signed with your name " + ("shown to everyone." if visibility == "public" else "shown to the organizers only.")


def check(*, connection: Connection, wallet: Wallet, petition_id: int) -> list[str]:
    """Look for each submitted token of this petition among its published entries; send a missing one again."""
    lines = []
    for token in wallet.values():
        if token["petition_id"] != petition_id or token["status"] not in ("submitted", "published"):
            continue
        if token["status"] == "published" or _published(connection, petition_id, token["message"]):
            # Counted: the message is forgotten, so this file no longer ties you to the published entry.
            for secret in ("message", "signature", "spki"):
                token.pop(secret, None)
            token["status"] = "published"
            lines.append("Your anonymous signature is published and counted.")
            continue
        status, answer = connection.anonymous("POST", "/api/v1/anonymous/signatures", {
            "petition_id": petition_id, "message": token["message"], "signature": token["signature"]})
        lines.append("Not published yet; sent again." if status == 202 else
                     "Not published yet; the server holds it for the next batch." if status == 409 else
                     _message(answer, "Not published, and the server refused it again."))
    return lines or ["No anonymous signature of yours for this petition in this wallet."]


def _published(connection: Connection, petition_id: int, message: str) -> bool:
    cursor = ""
    while True:
        status, ledger = connection.anonymous(
            "GET", f"/api/v1/petitions/{petition_id}/anonymous-signatures?limit=5000"
                   + (f"&cursor={cursor}" if cursor else ""))
        if status != 200:
            raise ClientError(_message(ledger, "Could not read the petition's published signatures."))
        if any(entry["message"] == message for entry in ledger["entries"]):
            return True
        if not ledger["next_cursor"]:
            return False
        cursor = ledger["next_cursor"]
