"""Blind-signature keys for the test suite without generating each one (issue #23).

Every petition that allows anonymity gets two fresh RSA keys when it opens (app/petitions/issuing_keys.py); at the suite's
1024 bits OpenSSL takes 15-30 ms a key, most of it finding primes, and the suite opens thousands of such petitions.
Here the primes are found once: the pool generates a real key now and then and keeps its two primes, and makes
every further key from two primes it holds (n = p*q, d = e^-1 mod lcm(p-1, q-1), as OpenSSL computes it), so k
primes give k*(k-1)/2 keys, all distinct. Keys of one process share primes with each other, which would be fatal
in production (a gcd of two moduli factors both) and changes nothing a test checks. Production never loads this.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from app.core import blindrsa

BITS = 1024  # the suite's blind_key_bits (tests/conftest.make_settings); other sizes are generated as usual
E = 65537


class KeyPool:
    """Hands out distinct keys of BITS bits, in an order that needs the fewest primes."""

    def __init__(self, generate: Callable[[int], blindrsa.PrivateKey]) -> None:
        self._generate = generate
        self._primes: list[int] = []
        self._next = (0, 1)  # the pair of primes (i < j) the next key is made of
        self._lock = threading.Lock()  # live servers open petitions from their own threads

    def take(self) -> blindrsa.PrivateKey:
        with self._lock:
            i, j = self._next
            self._next = (i + 1, j) if i + 1 < j else (0, j + 1)
            while len(self._primes) <= j:
                key = self._generate(BITS)
                self._primes += [key.p, key.q]
            p, q = self._primes[i], self._primes[j]
        # OpenSSL's primes of a 1024-bit key are each at least sqrt(2) * 2^511, so any two make 1024 bits.
        assert (p * q).bit_length() == BITS
        return blindrsa.PrivateKey(
            public=blindrsa.PublicKey(n=p * q, e=E), d=pow(E, -1, math.lcm(p - 1, q - 1)), p=p, q=q
        )


def install() -> KeyPool:
    """Make blindrsa.PrivateKey.generate take BITS-bit keys from a pool in this process."""
    generate = blindrsa.PrivateKey.generate
    pool = KeyPool(generate)

    def pooled(cls: type[blindrsa.PrivateKey], bits: int = 3072) -> blindrsa.PrivateKey:
        return pool.take() if bits == BITS else generate(bits)

    blindrsa.PrivateKey.generate = classmethod(pooled)  # type: ignore[method-assign, assignment]
    return pool
