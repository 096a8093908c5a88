"""RSA blind signatures, RFC 9474, variant RSABSSA-SHA384-PSS-Randomized (and its three siblings for the vectors).

The server's part (BlindSign) is here because no maintained Python library offers the raw RSA operation it
needs: `cryptography` signs only whole messages. It runs the raw private-key operation in the system's
OpenSSL 3 (libcrypto, through ctypes: constant time, CRT, OpenSSL's own blinding, and about 1.5 times
GMP's speed on x86-64 with its RSAZ code), or where that library cannot be loaded, in `gmpy2.powmod_sec`
(constant time) with the CRT and our own blinding. Either way the result is checked before anything leaves
(a fault in a CRT half would otherwise leak the key). The client's part (Prepare, Blind, Finalize) serves the command-line client and the
tests; browsers use @cloudflare/blindrsa-ts. Final signatures are verified by `cryptography`'s RSA-PSS with
the salt length pinned, never AUTO or MAX_LENGTH.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import secrets
from dataclasses import dataclass

import gmpy2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HASH_LEN = 48  # SHA-384
SALT_LEN = 48  # the PSS (not PSSZERO) variants
PREFIX_LEN = 32  # the randomized variants


class BlindSignatureError(ValueError):
    """Input that cannot be a valid blinded message, or a signature that does not verify."""


def _i2osp(value: int, length: int) -> bytes:
    return int(value).to_bytes(length, "big")


def _os2ip(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _mgf1(seed: bytes, length: int) -> bytes:
    output = b""
    counter = 0
    while len(output) < length:
        output += hashlib.sha384(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return output[:length]


def emsa_pss_encode(message: bytes, em_bits: int, salt: bytes) -> bytes:
    """RFC 8017, 9.1.1, with SHA-384 and MGF1-SHA-384."""
    em_len = (em_bits + 7) // 8
    m_hash = hashlib.sha384(message).digest()
    if em_len < HASH_LEN + len(salt) + 2:
        raise BlindSignatureError("the key is too small for this encoding")
    h = hashlib.sha384(b"\x00" * 8 + m_hash + salt).digest()
    db = b"\x00" * (em_len - len(salt) - HASH_LEN - 2) + b"\x01" + salt
    masked = bytes(a ^ b for a, b in zip(db, _mgf1(h, em_len - HASH_LEN - 1), strict=True))
    unused_bits = 8 * em_len - em_bits
    masked = bytes([masked[0] & (0xFF >> unused_bits)]) + masked[1:]
    return masked + h + b"\xbc"


@dataclass(frozen=True)
class PublicKey:
    n: int
    e: int

    @property
    def modulus_len(self) -> int:
        return (self.n.bit_length() + 7) // 8

    @classmethod
    def from_cryptography(cls, key: rsa.RSAPublicKey) -> PublicKey:
        numbers = key.public_numbers()
        return cls(n=numbers.n, e=numbers.e)

    @classmethod
    def from_spki(cls, spki: bytes) -> PublicKey:
        key = serialization.load_der_public_key(spki)
        if not isinstance(key, rsa.RSAPublicKey):
            raise BlindSignatureError("not an RSA public key")
        return cls.from_cryptography(key)

    def to_cryptography(self) -> rsa.RSAPublicKey:
        return rsa.RSAPublicNumbers(self.e, self.n).public_key()

    def spki(self) -> bytes:
        """The exact bytes that are published and hashed into the key id."""
        return self.to_cryptography().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def key_id(self) -> str:
        return hashlib.sha256(self.spki()).hexdigest()


@dataclass(frozen=True)
class PrivateKey:
    public: PublicKey
    d: int
    p: int
    q: int

    @classmethod
    def generate(cls, bits: int = 3072) -> PrivateKey:
        return cls.from_cryptography(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def from_cryptography(cls, key: rsa.RSAPrivateKey) -> PrivateKey:
        numbers = key.private_numbers()
        return cls(
            public=PublicKey(n=numbers.public_numbers.n, e=numbers.public_numbers.e),
            d=numbers.d,
            p=numbers.p,
            q=numbers.q,
        )

    @classmethod
    def from_pem(cls, pem: bytes, *, sealed_by_us: bool = False) -> PrivateKey:
        """`sealed_by_us`: the PEM came out of our own AES-GCM seal, so it is the key we generated; OpenSSL's
        consistency check (about 0.1 s for 3072 bits) is then skipped, and blind_sign still checks each result."""
        key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=sealed_by_us)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise BlindSignatureError("not an RSA private key")
        return cls.from_cryptography(key)

    def to_pem(self) -> bytes:
        n, e = self.public.n, self.public.e
        numbers = rsa.RSAPrivateNumbers(
            p=self.p,
            q=self.q,
            d=self.d,
            dmp1=rsa.rsa_crt_dmp1(self.d, self.p),
            dmq1=rsa.rsa_crt_dmq1(self.d, self.q),
            iqmp=rsa.rsa_crt_iqmp(self.p, self.q),
            public_numbers=rsa.RSAPublicNumbers(e, n),
        )
        # Our own numbers: OpenSSL's consistency check (0.1 s at 3072 bits) would only repeat what made them.
        return numbers.private_key(unsafe_skip_rsa_key_validation=True).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


RSA_NO_PADDING = 3


@functools.cache
def _libcrypto() -> ctypes.CDLL | None:
    """The system's OpenSSL 3 libcrypto with the few functions BlindSign needs declared, or None."""
    name = ctypes.util.find_library("crypto") or "libcrypto.so.3"
    try:
        lib = ctypes.CDLL(name)  # CDLL releases the interpreter lock during each call
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        if lib.OpenSSL_version_num() < 0x30000000:
            return None
        lib.BIO_new_mem_buf.restype = ctypes.c_void_p
        lib.BIO_new_mem_buf.argtypes = [ctypes.c_char_p, ctypes.c_int]
        lib.BIO_free.argtypes = [ctypes.c_void_p]
        lib.PEM_read_bio_PrivateKey.restype = ctypes.c_void_p
        lib.PEM_read_bio_PrivateKey.argtypes = [ctypes.c_void_p] * 4
        lib.EVP_PKEY_free.argtypes = [ctypes.c_void_p]
        lib.EVP_PKEY_CTX_new.restype = ctypes.c_void_p
        lib.EVP_PKEY_CTX_new.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.EVP_PKEY_CTX_free.argtypes = [ctypes.c_void_p]
        lib.EVP_PKEY_decrypt_init.argtypes = [ctypes.c_void_p]
        lib.EVP_PKEY_CTX_set_rsa_padding.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.EVP_PKEY_decrypt.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]
    except (OSError, AttributeError):
        return None
    return lib


class _OpenSSLKey:
    """A private key held by libcrypto, for the raw RSA operation (m^d mod n, RSA_NO_PADDING)."""

    def __init__(self, lib: ctypes.CDLL, pem: bytes) -> None:
        self._lib = lib
        bio = lib.BIO_new_mem_buf(pem, len(pem))
        if not bio:
            raise MemoryError("libcrypto could not allocate a buffer")
        try:
            self._pkey = lib.PEM_read_bio_PrivateKey(bio, None, None, None)
        finally:
            lib.BIO_free(bio)
        if not self._pkey:
            raise BlindSignatureError("libcrypto could not read the key")

    def raw_private(self, data: bytes) -> bytes:
        lib = self._lib
        context = lib.EVP_PKEY_CTX_new(self._pkey, None)
        if not context:
            raise MemoryError("libcrypto could not allocate a context")
        try:
            output = ctypes.create_string_buffer(len(data))
            length = ctypes.c_size_t(len(data))
            if (
                lib.EVP_PKEY_decrypt_init(context) != 1
                or lib.EVP_PKEY_CTX_set_rsa_padding(context, RSA_NO_PADDING) != 1
                or lib.EVP_PKEY_decrypt(context, output, ctypes.byref(length), data, len(data)) != 1
            ):
                raise BlindSignatureError("signing failed")
            return output.raw[: length.value].rjust(len(data), b"\x00")
        finally:
            lib.EVP_PKEY_CTX_free(context)

    def __del__(self) -> None:
        if getattr(self, "_pkey", None):
            self._lib.EVP_PKEY_free(self._pkey)
            self._pkey = None


class Signer:
    """BlindSign with one key, prepared once (the issuance path signs with each petition's key often)."""

    def __init__(self, key: PrivateKey, *, backend: str = "auto", pem: bytes | None = None) -> None:
        self.public = key.public
        lib = _libcrypto() if backend in ("auto", "openssl") else None
        if backend == "openssl" and lib is None:
            raise RuntimeError("OpenSSL 3's libcrypto is not available")
        self._openssl = _OpenSSLKey(lib, pem or key.to_pem()) if lib is not None else None
        self.backend = "openssl" if self._openssl else "gmpy2"
        self._n = gmpy2.mpz(key.public.n)
        self._e = gmpy2.mpz(key.public.e)
        self._p, self._q = gmpy2.mpz(key.p), gmpy2.mpz(key.q)
        self._dp = gmpy2.mpz(key.d) % (self._p - 1)
        self._dq = gmpy2.mpz(key.d) % (self._q - 1)
        self._q_inv = gmpy2.invert(self._q, self._p)

    def _sign_raw(self, m: gmpy2.mpz) -> gmpy2.mpz:
        s_p = gmpy2.powmod_sec(m % self._p, self._dp, self._p)
        s_q = gmpy2.powmod_sec(m % self._q, self._dq, self._q)
        h = (self._q_inv * (s_p - s_q)) % self._p
        return s_q + h * self._q

    def blind_sign(self, blinded_msg: bytes) -> bytes:
        """RFC 9474, 4.3: RSASP1 on the blinded message, and RSAVP1 to check the result before returning it."""
        k = self.public.modulus_len
        if len(blinded_msg) != k:
            raise BlindSignatureError(f"a blinded message is exactly {k} bytes")
        m = gmpy2.mpz(_os2ip(blinded_msg))
        if m >= self._n:
            raise BlindSignatureError("the blinded message is not smaller than the modulus")
        if self._openssl is not None:
            s = gmpy2.mpz(_os2ip(self._openssl.raw_private(blinded_msg)))
        else:
            # Blinding the input too: the time of the modular work does not depend on the message.
            while True:
                r = gmpy2.mpz(secrets.randbelow(int(self._n) - 2) + 2)
                if gmpy2.gcd(r, self._n) == 1:
                    break
            s = (self._sign_raw((m * gmpy2.powmod(r, self._e, self._n)) % self._n) * gmpy2.invert(r, self._n)) % self._n
        if gmpy2.powmod(s, self._e, self._n) != m:
            raise BlindSignatureError("signing failed its own check")  # a fault: nothing leaves
        return _i2osp(int(s), k)


@dataclass(frozen=True)
class Blinded:
    blinded_msg: bytes
    inv: int


def prepare(message: bytes, *, randomized: bool = True) -> bytes:
    """RFC 9474, 4.1: a random prefix makes the signed input unpredictable to the signer."""
    return secrets.token_bytes(PREFIX_LEN) + message if randomized else message


def blind(public: PublicKey, input_msg: bytes, *, salt: bytes | None = None, r: int | None = None) -> Blinded:
    """RFC 9474, 4.2 (the client's side). `salt` and `r` are fixed only by the test vectors."""
    salt = secrets.token_bytes(SALT_LEN) if salt is None else salt
    encoded = emsa_pss_encode(input_msg, public.n.bit_length() - 1, salt)
    m = _os2ip(encoded)
    n = gmpy2.mpz(public.n)
    if gmpy2.gcd(m, n) != 1:
        raise BlindSignatureError("invalid input")
    while r is None:
        candidate = secrets.randbelow(public.n - 2) + 2
        if gmpy2.gcd(candidate, n) == 1:
            r = candidate
    inv = int(gmpy2.invert(r, n))
    z = (m * int(gmpy2.powmod(r, public.e, n))) % public.n
    return Blinded(blinded_msg=_i2osp(z, public.modulus_len), inv=inv)


def finalize(public: PublicKey, input_msg: bytes, blind_sig: bytes, inv: int, *, salt_len: int = SALT_LEN) -> bytes:
    """RFC 9474, 4.4: unblind, then verify: a signature that does not verify is never kept."""
    k = public.modulus_len
    if len(blind_sig) != k:
        raise BlindSignatureError(f"a blind signature is exactly {k} bytes")
    signature = _i2osp((_os2ip(blind_sig) * inv) % public.n, k)
    verify(public, input_msg, signature, salt_len=salt_len)
    return signature


def verify(public: PublicKey, input_msg: bytes, signature: bytes, *, salt_len: int = SALT_LEN) -> None:
    """RSASSA-PSS-VERIFY with SHA-384, MGF1-SHA-384 and the salt length pinned."""
    if len(signature) != public.modulus_len:
        raise BlindSignatureError("the signature does not verify")
    try:
        public.to_cryptography().verify(
            signature, input_msg, padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=salt_len), hashes.SHA384()
        )
    except InvalidSignature:
        raise BlindSignatureError("the signature does not verify") from None
