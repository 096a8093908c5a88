"""One wallet secret, every credential: what a device needs to rebuild a worker's anonymous credentials.

A wallet secret is 16 random bytes made on the worker's first device and never sent to the server. Every
credential derives from it, per petition key and purpose, by HKDF-SHA256 (RFC 5869):

    PRK  = HKDF-Extract(salt = b"undersigned/wallet/v1", IKM = secret)
    okm(label, length) = HKDF-Expand(PRK, info = label, length)

    message = okm("<purpose>/<subject>/<key_id>/message", 64)     the RFC 9474 input message (prefix included)
    salt    = okm("<purpose>/<subject>/<key_id>/salt", 48)        the PSS salt
    r       = OS2IP(okm("<purpose>/<subject>/<key_id>/blind", k + 32)) mod n   the blinding factor (k bytes)
    check   = okm("check", 16)                                    what the server keeps to recognise the wallet

`purpose` is "sign" (the signing token), "discuss" (the discussion credential), "signer" (the petition's signer
credential, which proves a signature without naming it) or "ballot" (a ballot's credential); `subject` is the
petition's id in decimal, or the ballot's for "ballot"; `key_id` the key's id (lowercase hex SHA-256 of its
SPKI). The subject is in the label as well as the key: a server that published one key for two petitions (or
ballots) would otherwise receive the same blinded request for both and see the same token, pseudonym or
answer credential on both, linking a worker's anonymous actions across them. The 32 extra bytes make r's bias
from the reduction negligible (2^-256). The browser (assets/src/derive.js) and the
command-line client compute exactly this; tests/test_wallet_derive.py holds both to one vector.

So a device that holds the secret recomputes the blinded request it (or another device) sent, fetches the
reply the server kept for the account, and unblinds it: no second issuance, and still one credential per
person and petition. The check lets a device tell a recovery code from another account before using it, and
reveals nothing of the secret (HKDF is one-way).

The recovery code is the secret and one checksum byte (the first byte of its SHA-256), in Crockford base32,
28 characters in groups of four: a typo is told from a code of another wallet.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.core import blindrsa

SECRET_LEN = 16
CHECK_LEN = 16
MESSAGE_LEN = 64
EXTRACT_SALT = b"undersigned/wallet/v1"
PURPOSES = ("sign", "discuss", "signer", "ballot")


class RecoveryCodeError(ValueError):
    """A recovery code that is not one (mistyped, cut short): the message is for the worker."""


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_LEN)


def _okm(secret: bytes, label: str, length: int) -> bytes:
    if len(secret) != SECRET_LEN:
        raise ValueError(f"a wallet secret is {SECRET_LEN} bytes")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=EXTRACT_SALT, info=label.encode("ascii")).derive(secret)


def check(secret: bytes) -> bytes:
    return _okm(secret, "check", CHECK_LEN)


def matches(secret: bytes, expected: bytes) -> bool:
    return hmac.compare_digest(check(secret), expected)


@dataclass(frozen=True)
class Credential:
    """One credential's derived inputs for a petition key: what was blinded, and how to unblind its reply."""

    message: bytes
    blinded_msg: bytes
    inv: int

    def finalize(self, public: blindrsa.PublicKey, blind_signature: bytes) -> bytes:
        """The credential's signature from the server's kept reply; raises BlindSignatureError when the reply
        was not for this wallet's request (another wallet, or a credential from before wallets had a secret)."""
        return blindrsa.finalize(public, self.message, blind_signature, self.inv)


def credential(
    secret: bytes,
    *,
    purpose: str,
    petition_id: int | None = None,
    ballot_id: int | None = None,
    key_id: str,
    public: blindrsa.PublicKey,
) -> Credential:
    """The credential of `purpose` for a petition (sign, discuss, signer: `petition_id`) or a ballot (`ballot_id`)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    subject = ballot_id if purpose == "ballot" else petition_id
    if isinstance(subject, bool) or not isinstance(subject, int) or subject <= 0:
        raise ValueError(f"not a {'ballot' if purpose == 'ballot' else 'petition'} id: {subject!r}")
    label = f"{purpose}/{subject}/{key_id}/"
    message = _okm(secret, label + "message", MESSAGE_LEN)
    salt = _okm(secret, label + "salt", blindrsa.SALT_LEN)
    r = int.from_bytes(_okm(secret, label + "blind", public.modulus_len + 32), "big") % public.n
    blinded = blindrsa.blind(public, message, salt=salt, r=r)
    return Credential(message=message, blinded_msg=blinded.blinded_msg, inv=blinded.inv)


# Crockford's base32: no I, L, O or U; those read as 1, 1 and 0 when typed.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_AS = {"I": "1", "L": "1", "O": "0"}
CODE_CHARS = 28


def recovery_code(secret: bytes) -> str:
    data = secret + hashlib.sha256(secret).digest()[:1]
    number = int.from_bytes(data, "big") << (CODE_CHARS * 5 - len(data) * 8)
    chars = "".join(_ALPHABET[(number >> (5 * (CODE_CHARS - 1 - index))) & 31] for index in range(CODE_CHARS))
    return "-".join(chars[index : index + 4] for index in range(0, CODE_CHARS, 4))


def parse_recovery_code(code: str) -> bytes:
    """The secret in a recovery code typed by a person: case, spaces and hyphens do not matter."""
    cleaned = "".join(_READ_AS.get(char, char) for char in code.upper() if char not in " -\t\n")
    if len(cleaned) != CODE_CHARS or any(char not in _ALPHABET for char in cleaned):
        raise RecoveryCodeError(f"A recovery code is {CODE_CHARS} letters and digits, in groups of four.")
    number = 0
    for char in cleaned:
        number = number * 32 + _ALPHABET.index(char)
    padding = CODE_CHARS * 5 - (SECRET_LEN + 1) * 8
    data = (number >> padding).to_bytes(SECRET_LEN + 1, "big")
    secret, checksum = data[:SECRET_LEN], data[SECRET_LEN:]
    if number & ((1 << padding) - 1) or hashlib.sha256(secret).digest()[:1] != checksum:
        raise RecoveryCodeError("This recovery code has a typo: check each group of four against your copy.")
    return secret
