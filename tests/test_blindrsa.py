"""RSA blind signatures (RFC 9474) checked bit for bit against the published test vectors, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import gmpy2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from app.core import blindrsa
from app.core.blindrsa import BlindSignatureError, PrivateKey, PublicKey, Signer

VECTORS = Path(__file__).parent / "data" / "rfc9474"


def _load() -> list[tuple[str, dict[str, str]]]:
    return [
        (f"{name.split('.')[0]}:{vector['name']}", vector)
        for name in ("test_vectors_rfc9474.json", "vectors_from_draft.json")
        for vector in json.loads((VECTORS / name).read_text())
    ]


def number(value: str) -> int:
    return int(value, 16)


def octets(value: str) -> bytes:
    return bytes.fromhex(value)


def key_of(vector: dict[str, str]) -> PrivateKey:
    return PrivateKey(
        public=PublicKey(n=number(vector["n"]), e=number(vector["e"])),
        d=number(vector["d"]),
        p=number(vector["p"]),
        q=number(vector["q"]),
    )


BACKENDS = ["openssl", "gmpy2"] if blindrsa._libcrypto() is not None else ["gmpy2"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("vector", [case for _, case in _load()], ids=[name for name, _ in _load()])
def test_every_step_matches_the_rfc_9474_vectors(vector: dict[str, str], backend: str) -> None:
    key = key_of(vector)
    salt = octets(vector["salt"])
    salt_len = len(salt)
    input_msg = octets(vector["input_msg"])
    if vector.get("msg_prefix"):
        assert input_msg == octets(vector["msg_prefix"]) + octets(vector["msg"])
    if "encoded_msg" in vector:
        assert blindrsa.emsa_pss_encode(input_msg, key.public.n.bit_length() - 1, salt) == octets(vector["encoded_msg"])
    r = int(gmpy2.invert(number(vector["inv"]), key.public.n))
    blinded = blindrsa.blind(key.public, input_msg, salt=salt, r=r)
    assert blinded.blinded_msg == octets(vector["blinded_msg"])
    assert blinded.inv == number(vector["inv"])
    signer = Signer(key, backend=backend)
    assert signer.backend == backend
    blind_sig = signer.blind_sign(blinded.blinded_msg)
    assert blind_sig == octets(vector["blind_sig"])
    signature = blindrsa.finalize(key.public, input_msg, blind_sig, blinded.inv, salt_len=salt_len)
    assert signature == octets(vector["sig"])
    # And the ordinary RSA-PSS verifier agrees, with the salt length pinned.
    key.public.to_cryptography().verify(
        signature, input_msg, padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=salt_len), hashes.SHA384()
    )


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.generate(2048)  # 3072 in service; the smaller key keeps this module quick


def test_a_fresh_round_trip_with_random_prefix_salt_and_blind(key: PrivateKey) -> None:
    message = b"token for petition 7"
    input_msg = blindrsa.prepare(message)
    assert input_msg.endswith(message) and len(input_msg) == len(message) + 32
    blinded = blindrsa.blind(key.public, input_msg)
    signature = blindrsa.finalize(key.public, input_msg, Signer(key).blind_sign(blinded.blinded_msg), blinded.inv)
    blindrsa.verify(key.public, input_msg, signature)
    # Blinding hides the message: the same input blinds differently every time.
    assert blindrsa.blind(key.public, input_msg).blinded_msg != blinded.blinded_msg


def test_forged_tampered_or_foreign_signatures_do_not_verify(key: PrivateKey) -> None:
    input_msg = blindrsa.prepare(b"mine")
    blinded = blindrsa.blind(key.public, input_msg)
    signature = blindrsa.finalize(key.public, input_msg, Signer(key).blind_sign(blinded.blinded_msg), blinded.inv)
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    other = PrivateKey.generate(2048)
    for public, message, candidate in (
        (key.public, input_msg, tampered),
        (key.public, b"another", signature),
        (other.public, input_msg, signature),
        (key.public, input_msg, b"\x00" * 10),
    ):
        with pytest.raises(BlindSignatureError):
            blindrsa.verify(public, message, candidate)
    # A blind signature from another key does not finalize into a valid one.
    with pytest.raises(BlindSignatureError):
        blindrsa.finalize(
            key.public,
            input_msg,
            Signer(other).blind_sign(blindrsa.blind(other.public, input_msg).blinded_msg),
            blinded.inv,
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_signer_refuses_what_cannot_be_a_blinded_message(key: PrivateKey, backend: str) -> None:
    signer = Signer(key, backend=backend)
    size = key.public.modulus_len
    for bad in (b"", b"\x01" * (size - 1), b"\x01" * (size + 1), b"\xff" * size, key.public.n.to_bytes(size, "big")):
        with pytest.raises(BlindSignatureError):
            signer.blind_sign(bad)


def test_both_backends_sign_alike_and_in_ci_openssl_is_there(key: PrivateKey) -> None:
    import os

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        assert BACKENDS == ["openssl", "gmpy2"], "CI runs on Debian, whose libcrypto.so.3 must be found"
    blinded = blindrsa.blind(key.public, blindrsa.prepare(b"same")).blinded_msg
    assert len({Signer(key, backend=backend).blind_sign(blinded) for backend in BACKENDS}) == 1


def test_keys_survive_their_pem_and_the_key_id_is_the_spki_digest(key: PrivateKey) -> None:
    again = PrivateKey.from_pem(key.to_pem())
    assert again == key
    import hashlib

    assert key.public.key_id() == hashlib.sha256(key.public.spki()).hexdigest()
    assert PublicKey.from_spki(key.public.spki()) == key.public
