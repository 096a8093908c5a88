"""The suite's pool of blind-signature keys (tests/key_pool.py) hands out distinct, whole keys of the suite's size
that sign and verify like generated ones."""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives.asymmetric import rsa

from app.core import blindrsa
from tests import key_pool


def test_the_pool_hands_out_distinct_working_keys_from_few_generated_ones() -> None:
    generated: list[int] = []

    def generate(bits: int) -> blindrsa.PrivateKey:
        generated.append(bits)
        return blindrsa.PrivateKey.from_cryptography(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    pool = key_pool.KeyPool(generate)
    keys = [pool.take() for _ in range(45)]
    assert len({key.public.key_id() for key in keys}) == 45
    assert generated == [key_pool.BITS] * 5  # ten primes make 45 keys
    for key in keys[:3] + keys[-3:]:
        assert key.public.n.bit_length() == key_pool.BITS and key.public.e == 65537
        # OpenSSL's consistency check of the whole key, then a blind signature made and verified.
        blindrsa.PrivateKey.from_pem(key.to_pem())
        message = blindrsa.prepare(secrets.token_bytes(32))
        blinded = blindrsa.blind(key.public, message)
        reply = blindrsa.Signer(key).blind_sign(blinded.blinded_msg)
        blindrsa.verify(key.public, message, blindrsa.finalize(key.public, message, reply, blinded.inv))


def test_the_suite_takes_keys_of_its_size_from_the_pool_and_others_as_usual() -> None:
    # Made of the pool's primes: of any three keys in a row, two share a prime (the pairs run (0,1), (0,2), (1,2),
    # (0,3)...), wherever earlier tests of this process left the pool.
    keys = [blindrsa.PrivateKey.generate(key_pool.BITS) for _ in range(3)]
    assert len({key.public.n for key in keys}) == 3
    assert any({a.p, a.q} & {b.p, b.q} for index, a in enumerate(keys) for b in keys[index + 1 :])
    other = blindrsa.PrivateKey.generate(2048)
    assert other.public.n.bit_length() == 2048
