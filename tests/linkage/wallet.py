"""A worker's wallet on one device, in Python, as the browser runs it (issue 19, the wallet spec): the wallet
secret made on the first device, its check registered with the server, every credential derived from the secret,
a recovery code carried by hand, and device linking over HTTP exactly as the linking page sends it.

The linking protocol is written here from the spec, not imported from the application: the tests that use it
check the server against the text both devices are built on. Every secret value a linking run makes (the code,
the keys derived from it, both ephemeral private keys, the ECDH shared secret, the sealing key; not the IV, which
travels in the box) is kept in `KeyMaterial`, so a test can search every store for it afterwards.

A device is anything with `request(method, path, body, expect=...)` sending the signed-in browser's requests
(cookies and X-CSRF-Token), `tokens` (its IndexedDB credentials by (petition, purpose)) and `secret`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.anonymous import derive
from app.core import blindrsa
from app.core.b64url import decode as b64d
from app.core.b64url import encode as b64e

LINK_PATH = "/api/v1/wallet/link"
LINK_SALT = b"undersigned/link/v1"
SEAL_INFO = b"undersigned/link/v1/seal"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_KEYS = ("offer", "check", "answer", "seal")
# Every purpose a wallet knows since polls (issue #25), as wallet.js asks.
PURPOSES = "sign,discuss,ballot,signer"


class Device(Protocol):
    name: str
    secret: bytes | None
    tokens: dict[tuple[int, str], tuple[bytes, bytes]]

    def request(
        self, method: str, path: str, body: object | None = None, *, expect: int | tuple[int, ...] = 200
    ) -> Any: ...


# -- the wallet: secret, check, credentials derived from it ----------------------------------------------------


def sync(device: Device) -> str:
    """What wallet.js does on every signed-in page (spec section 4). Returns what the device did: "started" (made
    the wallet), "lost-race", "elsewhere" (another device holds the wallet: nothing collected) or "synced"."""
    state = device.request("GET", f"/api/v1/wallet?purposes={PURPOSES}").json()
    outcome = "synced"
    if device.secret is None:
        if state.get("wallet_check") is not None:
            return "elsewhere"
        secret = derive.new_secret()
        answer = device.request(
            "POST", "/api/v1/wallet/check", {"check": b64e(derive.check(secret))}, expect=(200, 201, 409)
        )
        if answer.status_code == 409:
            return "lost-race"
        device.secret, outcome = secret, "started"
    secret = device.secret
    for item in state["issued"]:
        slot = _slot(item)
        if slot in device.tokens:
            continue
        public = blindrsa.PublicKey.from_spki(b64d(item["spki"]))
        credential = derive.credential(secret, purpose=slot[1], key_id=item["key_id"], public=public, **_about(slot))
        with contextlib.suppress(blindrsa.BlindSignatureError):  # a credential of an older, random wallet: "elsewhere"
            device.tokens[slot] = (credential.message, credential.finalize(public, b64d(item["blind_signature"])))
    pending, requests = {}, []
    for key in state["due"]:
        slot = _slot(key)
        public = blindrsa.PublicKey.from_spki(b64d(key["spki"]))
        credential = derive.credential(secret, purpose=slot[1], key_id=key["key_id"], public=public, **_about(slot))
        pending[slot] = (public, credential)
        requests.append(
            {
                "petition_id": key["petition_id"],
                "purpose": slot[1],
                **({"ballot_id": slot[0]} if slot[1] == "ballot" else {}),
                "blinded_message": b64e(credential.blinded_msg),
            }
        )
    if requests:
        issued = device.request("POST", "/api/v1/wallet/tokens", {"tokens": requests}).json()["tokens"]
        for item in issued:
            slot = _slot(item)
            public, credential = pending[slot]
            device.tokens[slot] = (credential.message, credential.finalize(public, b64d(item["blind_signature"])))
    return outcome


def _slot(item: dict[str, Any]) -> tuple[int, str]:
    """Where a device keeps a credential: (petition, purpose), or (poll, "ballot") for a poll's (issue #25)."""
    purpose = item.get("purpose", "sign")
    return (item["ballot_id"] if purpose == "ballot" else item["petition_id"]), purpose


def _about(slot: tuple[int, str]) -> dict[str, int]:
    return {"ballot_id": slot[0]} if slot[1] == "ballot" else {"petition_id": slot[0]}


def import_recovery_code(device: Device, code: str) -> None:
    """The /wallet page's "enter a recovery code": parsed, checked against the account's wallet_check, kept."""
    secret = derive.parse_recovery_code(code)
    check = device.request("GET", "/api/v1/wallet").json()["wallet_check"]
    if check is None or not derive.matches(secret, b64d(check)):
        raise AssertionError(f"{device.name}: the recovery code is not this account's wallet")
    device.secret = secret


# -- linking a device ------------------------------------------------------------------------------------------


def normalise(code: str) -> str:
    return "".join({"I": "1", "L": "1", "O": "0"}.get(c, c) for c in code.upper() if c not in " -\t\n")


def new_code() -> str:
    number = secrets.randbits(60)
    return "".join(CROCKFORD[(number >> (5 * (11 - i))) & 31] for i in range(12))


def code_keys(code: str) -> dict[str, bytes]:
    ikm = normalise(code).encode("ascii")
    return {
        x: HKDF(algorithm=hashes.SHA256(), length=32, salt=LINK_SALT, info=x.encode()).derive(ikm) for x in CODE_KEYS
    }


def mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _raw(private: ec.EllipticCurvePrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def sealing_key(private: ec.EllipticCurvePrivateKey, peer_raw: bytes, k_seal: bytes) -> tuple[bytes, bytes]:
    """(ECDH shared secret, sealing key)."""
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer_raw)
    shared = private.exchange(ec.ECDH(), peer)
    return shared, HKDF(algorithm=hashes.SHA256(), length=32, salt=k_seal, info=SEAL_INFO).derive(shared)


@dataclass
class KeyMaterial:
    """Every secret value of linking runs, by name: what must be found nowhere the server writes."""

    values: dict[str, bytes] = field(default_factory=dict)
    codes: list[str] = field(default_factory=list)

    def add(self, name: str, value: bytes) -> None:
        self.values[f"{name} #{len(self.values)}"] = value

    def add_private(self, name: str, private: ec.EllipticCurvePrivateKey) -> None:
        self.add(f"{name} ECDH private key (scalar)", private.private_numbers().private_value.to_bytes(32, "big"))
        self.add(
            f"{name} ECDH private key (PKCS#8 DER)",
            private.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )


class LinkingA:
    """Device A's half: shows the code, checks B's answer, seals the secret. Subclasses (test doubles) may
    override `seal` to show what a broken protocol would leave behind."""

    def __init__(self, device: Device, material: KeyMaterial) -> None:
        self.device, self.material = device, material
        self.code = new_code()
        self.keys = code_keys(self.code)
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.raw = _raw(self.private)
        material.codes.append(self.code)
        for name, value in self.keys.items():
            material.add(f"K_{name}", value)
        material.add_private("A's", self.private)

    @property
    def shown(self) -> str:
        return "-".join(self.code[i : i + 4] for i in range(0, 12, 4))

    def open(self) -> None:
        self.device.request(
            "POST",
            LINK_PATH,
            {
                "offer_key": b64e(self.raw),
                "offer_proof": b64e(mac(self.keys["offer"], self.raw)),
                "code_proof": b64e(mac(self.keys["check"], self.raw)),
            },
            expect=201,
        )

    def seal(self, secret: bytes, answer_raw: bytes) -> bytes:
        shared, key = sealing_key(self.private, answer_raw, self.keys["seal"])
        iv = secrets.token_bytes(12)
        self.material.add("ECDH shared secret", shared)
        self.material.add("sealing key", key)
        return iv + AESGCM(key).encrypt(iv, secret, self.raw + answer_raw)

    def complete(self) -> None:
        """A's poll finds the answer: it checks B's proof and posts the sealed secret."""
        session = self.device.request("GET", LINK_PATH).json()
        assert session["state"] == "answered", session
        answer_raw = b64d(session["answer_key"])
        expected = mac(self.keys["answer"], answer_raw + self.raw)
        assert hmac.compare_digest(b64d(session["answer_proof"]), expected), "B's answer_proof does not check"
        assert self.device.secret is not None
        sealed = self.seal(self.device.secret, answer_raw)
        self.device.request("POST", f"{LINK_PATH}/sealed", {"sealed": b64e(sealed)})


class LinkingB:
    """Device B's half: types the code, answers, opens the sealed secret and checks it against wallet_check."""

    def __init__(self, device: Device, code: str, material: KeyMaterial) -> None:
        self.device, self.material = device, material
        self.keys = code_keys(code)
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.raw = _raw(self.private)
        material.add_private("B's", self.private)
        self.offer_raw = b""

    def answer(self) -> None:
        session = self.device.request("GET", LINK_PATH).json()
        assert session["state"] == "offered", session
        self.offer_raw = b64d(session["offer_key"])
        assert hmac.compare_digest(b64d(session["offer_proof"]), mac(self.keys["offer"], self.offer_raw)), (
            "the offer's proof does not check: not the key of the device showing the code"
        )
        self.device.request(
            "POST",
            f"{LINK_PATH}/answer",
            {
                "code_proof": b64e(mac(self.keys["check"], self.offer_raw)),
                "answer_key": b64e(self.raw),
                "answer_proof": b64e(mac(self.keys["answer"], self.raw + self.offer_raw)),
            },
        )

    def open(self, sealed: bytes) -> bytes:
        _shared, key = sealing_key(self.private, self.offer_raw, self.keys["seal"])
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], self.offer_raw + self.raw)

    def receive(self) -> bytes:
        session = self.device.request("GET", LINK_PATH).json()
        assert session["state"] == "sealed", session
        secret = self.open(b64d(session["sealed"]))
        check = self.device.request("GET", "/api/v1/wallet").json()["wallet_check"]
        assert check is not None and derive.matches(secret, b64d(check)), "the opened secret is not this wallet's"
        self.device.secret = secret
        self.device.request("POST", f"{LINK_PATH}/done", expect=204)
        return secret


def link(
    a: Device, b: Device, material: KeyMaterial, *, linking_a: type[LinkingA] = LinkingA, between: Any = None
) -> bytes:
    """A shows a code, B types it: the whole protocol, in the order the two pages' polls run it. `between` (if
    given) is called after the sealed secret is posted and before B collects it (while the server holds it)."""
    offer = linking_a(a, material)
    offer.open()
    answer = LinkingB(b, offer.shown, material)
    answer.answer()
    offer.complete()
    if between is not None:
        between()
    return answer.receive()
