"""Both devices' half of linking a device (issue 19), in Python: for the command-line client, the tests and the
linkage suite. The browser's half (assets/src/wallet-link.js) computes exactly this.

Device A holds the wallet secret and shows a code: 12 Crockford base32 characters (60 random bits). From it,
each device derives four keys, K_x = HKDF-SHA256(IKM = the 12 characters, salt = "undersigned/link/v1",
info = x) for x in offer, check, answer, seal, and:

    A: ephemeral P-256 key, A_raw (65-byte point); offer_proof = HMAC(K_offer, A_raw), code_proof = HMAC(K_check, A_raw)
    B: ephemeral P-256 key, B_raw;                 answer_proof = HMAC(K_answer, B_raw || A_raw)
    both: key = HKDF-SHA256(IKM = ECDH x, salt = K_seal, info = "undersigned/link/v1/seal")
    A: sealed = IV || AES-256-GCM(key, IV, secret, AAD = A_raw || B_raw)

The server compares code_proof, so it counts wrong codes, but cannot make either proof of its own: B checks
offer_proof and A checks answer_proof, so a server that swaps in a key of its own is caught by the device it
lied to. B checks offer_proof before it answers, so it never posts a proof for a key nobody showed the code with;
B keeps the secret only when its check matches the account's wallet_check.

Each device keeps its own deadline by its own clock, whatever the server reports: A gives up min(expires_in, 600)
seconds after its code was accepted, B 10 minutes after it answered. The code is 60 bits: a server that keeps a
session open to guess it offline from offer_proof gets only that window. A says the device is linked only on the
server's "done" (after B's /done), never because the session vanished.

`call(method, path, body) -> (status, answer)` is app/anonymous/client.Session.call's signature.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.anonymous import derive
from app.core.b64url import decode as _b64d
from app.core.b64url import encode as _b64e

Call = Callable[[str, str, object | None], tuple[int, Any]]
PATH = "/api/v1/wallet/link"
SALT = b"undersigned/link/v1"
SEAL_INFO = b"undersigned/link/v1/seal"
CODE_CHARS = 12
LIFETIME_SECONDS = 600  # the most any device waits, whatever the server says
EXPIRY_SLACK = 5  # a 404 this close to A's deadline is the session expiring (A's clock starts after the server's)
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32, as derive.py's recovery code
_READ_AS = {"I": "1", "L": "1", "O": "0"}


class LinkError(Exception):
    """Linking failed: the message is for the worker, in plain words."""


# The code ------------------------------------------------------------------------------------------------


def new_code() -> str:
    number = secrets.randbits(5 * CODE_CHARS)
    return "".join(_ALPHABET[(number >> (5 * index)) & 31] for index in reversed(range(CODE_CHARS)))


def normalise(code: str) -> str:
    """The 12 characters of a code as a person typed it: case, spaces and hyphens do not matter; I, L read 1, O 0."""
    cleaned = "".join(_READ_AS.get(char, char) for char in code.upper() if char not in " -\t\n")
    if len(cleaned) != CODE_CHARS or any(char not in _ALPHABET for char in cleaned):
        raise LinkError(
            "A linking code is 12 letters and digits, in three groups of four, as your other device shows it."
        )
    return cleaned


def display(code: str) -> str:
    code = normalise(code)
    return "-".join(code[index : index + 4] for index in range(0, CODE_CHARS, 4))


def code_key(code: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=purpose.encode("ascii")).derive(
        normalise(code).encode("ascii")
    )


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _raw(private: ec.EllipticCurvePrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _sealing_key(code: str, private: ec.EllipticCurvePrivateKey, peer_raw: bytes) -> bytes:
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer_raw)
    except ValueError:
        raise LinkError("Your other device's key arrived damaged: start again.") from None
    shared = private.exchange(ec.ECDH(), peer)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=code_key(code, "seal"), info=SEAL_INFO).derive(shared)


# Device A: holds the secret, shows the code ----------------------------------------------------------------


@dataclass
class Offer:
    code: str = field(default_factory=new_code)
    private: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def raw(self) -> bytes:
        return _raw(self.private)

    def body(self) -> dict[str, str]:
        return {
            "offer_key": _b64e(self.raw),
            "offer_proof": _b64e(_mac(code_key(self.code, "offer"), self.raw)),
            "code_proof": _b64e(_mac(code_key(self.code, "check"), self.raw)),
        }

    def seal(self, secret: bytes, *, answer_key: bytes, answer_proof: bytes) -> bytes:
        """The secret sealed to the device that answered, once its proof shows it was shown this code."""
        expected = _mac(code_key(self.code, "answer"), answer_key + self.raw)
        if not hmac.compare_digest(expected, answer_proof):
            raise LinkError(
                "A device answered your code, but its key was changed on the way: the wallet was not "
                "sent. Start again, and tell your organizers if it happens again."
            )
        iv = secrets.token_bytes(12)
        aead = AESGCM(_sealing_key(self.code, self.private, answer_key))
        return iv + aead.encrypt(iv, secret, self.raw + answer_key)


# Device B: types the code, receives the secret -------------------------------------------------------------


@dataclass
class Answer:
    code: str
    offer_key: bytes
    private: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def raw(self) -> bytes:
        return _raw(self.private)

    def body(self) -> dict[str, str]:
        return {
            "code_proof": _b64e(_mac(code_key(self.code, "check"), self.offer_key)),
            "answer_key": _b64e(self.raw),
            "answer_proof": _b64e(_mac(code_key(self.code, "answer"), self.raw + self.offer_key)),
        }

    def check_offer(self, offer_proof: bytes) -> None:
        """The offered key is the one the device showing this code made (the server cannot prove that itself).
        A mistyped code fails the same way, so the words cover both."""
        if not hmac.compare_digest(_mac(code_key(self.code, "offer"), self.offer_key), offer_proof):
            raise LinkError(MISMATCH)

    def open(self, sealed: bytes, *, expected_check: bytes) -> bytes:
        if len(sealed) != 12 + derive.SECRET_LEN + 16:
            raise LinkError("What your other device sent cannot be opened: start again.")
        try:
            secret = AESGCM(_sealing_key(self.code, self.private, self.offer_key)).decrypt(
                sealed[:12], sealed[12:], self.offer_key + self.raw
            )
        except InvalidTag:
            raise LinkError("What your other device sent cannot be opened: start again.") from None
        if not derive.matches(secret, expected_check):
            raise LinkError(
                "Your other device sent a wallet that is not this account's: it was not kept. Link from "
                "the device where you collect your credentials, or enter your recovery code."
            )
        return secret


# Over the API ----------------------------------------------------------------------------------------------


def _refused(status: int, answer: Any, default: str) -> LinkError:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict) and answer["error"].get("message"):
        return LinkError(str(answer["error"]["message"]))
    return LinkError(f"{default} (the server answered {status}).")


MISMATCH = (
    "That is not the code your other device shows: check it and type it again. If it is exactly what it "
    "shows, your other device's key was changed on the way: nothing was sent to it. Show a new code there, "
    "and tell your organizers if it happens again."
)
NOT_COLLECTED = (
    "Your new device did not collect the wallet before the code expired: show a new code, and type it "
    "on the new device."
)
CLOSED_AFTER_SEAL = (
    "The linking session closed before your new device said it had the wallet. If it does not hold "
    "your wallet now, show a new code."
)
EXPIRED = "The code expired before a new device used it: show a new code."
WAITED = (
    "Your other device did not send the wallet within 10 minutes of this device answering its code: show a "
    "new code there and start again."
)
ALREADY_ANSWERED = "This code was already used by another device. Show a new code on the device that has your wallet."
ENDED = (
    "The linking session ended before the wallet was sent: it expired, or the other device cancelled or "
    "closed its page. Start again: show a new code on the device that has your wallet."
)


def _session(call: Call) -> dict[str, Any] | None:
    status, answer = call("GET", PATH, None)
    if status == 404:
        return None
    if status != 200:
        raise _refused(status, answer, "Reading the linking session failed")
    return answer


def _seconds(answer: Any) -> int:
    """The server's expires_in, never more than the protocol's 10 minutes (a server stalling a session to guess
    the code gets no longer than that)."""
    reported = answer.get("expires_in") if isinstance(answer, dict) else None
    if isinstance(reported, int) and not isinstance(reported, bool) and 0 < reported < LIFETIME_SECONDS:
        return reported
    return LIFETIME_SECONDS


def offer(
    call: Call,
    *,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[str, Callable[[bytes], None]]:
    """Device A: open a session. Returns the code to show (XXXX-XXXX-XXXX) and `finish(secret)`, which waits for
    the other device's answer, checks it, seals the secret to it and waits until the other device took it, at
    most min(expires_in, 600) seconds by this device's clock."""
    made = Offer()
    status, answer = call("POST", PATH, made.body())
    if status != 201:
        raise _refused(status, answer, "Opening a linking session failed")
    deadline = clock() + _seconds(answer)

    sealed = False  # kept between calls of finish: one that stopped early (a signal, a test) goes on from there

    def give_up(words: str) -> LinkError:
        call("DELETE", PATH, None)  # the code stops working now, whatever the server would have let it do
        return LinkError(words)

    def finish(secret: bytes) -> None:
        nonlocal sealed
        while True:
            session = _session(call)
            if session is not None and session["state"] == "done":
                return  # the other device took the secret: the server's marker says so, once
            if session is None:
                if not sealed:
                    raise LinkError(ENDED)
                raise LinkError(NOT_COLLECTED if clock() >= deadline - EXPIRY_SLACK else CLOSED_AFTER_SEAL)
            if clock() >= deadline:
                raise give_up(NOT_COLLECTED if sealed else EXPIRED)
            if session["offer_key"] != _b64e(made.raw):
                raise LinkError("Another linking code was shown for your account since this one: use the newest.")
            if session["state"] == "answered" and not sealed:
                try:
                    box = made.seal(
                        secret, answer_key=_b64d(session["answer_key"]), answer_proof=_b64d(session["answer_proof"])
                    )
                except LinkError:
                    call("DELETE", PATH, None)
                    raise
                status, answer = call("POST", PATH + "/sealed", {"sealed": _b64e(box)})
                if status != 200:
                    raise _refused(status, answer, "Sending the sealed wallet failed")
                sealed = True
            sleep(poll_seconds)

    return display(made.code), finish


def answer(
    call: Call,
    code: str,
    expected_check: bytes | None = None,
    *,
    poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """Device B: answer the code another device of the account shows; returns the wallet secret, checked against
    the account's wallet_check (read from GET /api/v1/wallet unless given), once the session is closed. B waits
    for the sealed wallet at most 10 minutes after answering, by this device's clock."""
    code = normalise(code)
    if expected_check is None:
        status, wallet = call("GET", "/api/v1/wallet", None)
        if status != 200:
            raise _refused(status, wallet, "Reading your wallet's state failed")
        if not wallet.get("wallet_check"):
            raise LinkError(
                "No device has registered a wallet for this account yet, so there is nothing to link. "
                "Open a petition on the device that collects your credentials first."
            )
        expected_check = _b64d(wallet["wallet_check"])
    session = _session(call)
    if session is None:
        raise LinkError(
            "No device is showing a linking code for your account right now: the code expired (codes "
            "last 10 minutes), was used, or was cancelled. Show a new code on the device that has your "
            "wallet."
        )
    if not session.get("offer_key") or not session.get("offer_proof"):  # "done": another device took it
        raise LinkError(ALREADY_ANSWERED)
    made = Answer(code=code, offer_key=_b64d(session["offer_key"]))
    made.check_offer(_b64d(session["offer_proof"]))  # before answering: no proof goes out for a key not A's
    status, refusal = call("POST", PATH + "/answer", made.body())
    if status != 200:
        raise _refused(status, refusal, "Answering the code failed")
    deadline = clock() + _seconds(refusal)
    while True:
        sleep(poll_seconds)
        session = _session(call)
        if session is None or session.get("offer_key") != _b64e(made.offer_key):  # gone, or replaced
            raise LinkError(ENDED)
        if session["state"] == "sealed":
            break
        if clock() >= deadline:
            raise LinkError(WAITED)
    secret = made.open(_b64d(session["sealed"]), expected_check=expected_check)
    status, refusal = call("POST", PATH + "/done", None)
    if status not in (204, 404):  # 404: it expired this very moment, and the secret is here all the same
        raise _refused(status, refusal, "Closing the linking session failed")
    return secret
