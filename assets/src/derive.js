// One wallet secret, every credential: the browser's half of app/anonymous/derive.py (read its docstring for
// the derivation; the two must agree byte for byte, tests/test_wallet_derive.py holds them to one vector).
// Native Web Crypto only: HKDF-SHA256 here, the RSA arithmetic in credential() (BigInt).

export const SECRET_LEN = 16;
const EXTRACT_SALT = new TextEncoder().encode("undersigned/wallet/v1");

async function okm(secret, label, length) {
  if (secret.length !== SECRET_LEN) throw new Error(`a wallet secret is ${SECRET_LEN} bytes`);
  const key = await crypto.subtle.importKey("raw", secret, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: EXTRACT_SALT, info: new TextEncoder().encode(label) }, key, length * 8);
  return new Uint8Array(bits);
}

export function newSecret() {
  return crypto.getRandomValues(new Uint8Array(SECRET_LEN));
}

export function walletCheck(secret) {
  return okm(secret, "check", 16);
}

// The subject names what the credential is for: the petition for "sign", "discuss" and "signer", the ballot for
// "ballot" (app/anonymous/derive.py's label, `<purpose>/<subject>/<key_id>/<what>`).
export const PURPOSES = ["sign", "discuss", "ballot", "signer"];

export function derivedBytes(secret, purpose, subject, keyId, what, length) {
  if (!Number.isSafeInteger(subject) || subject <= 0) {
    throw new Error(`not a ${purpose === "ballot" ? "ballot" : "petition"} id: ${subject}`);
  }
  return okm(secret, `${purpose}/${subject}/${keyId}/${what}`, length);
}

// Crockford's base32: no I, L, O or U; those read as 1, 1 and 0 when typed.
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const READ_AS = { I: "1", L: "1", O: "0" };
export const CODE_CHARS = 28;

export class RecoveryCodeError extends Error {}

export async function recoveryCode(secret) {
  const checksum = new Uint8Array(await crypto.subtle.digest("SHA-256", secret))[0];
  let number = 0n;
  for (const byte of [...secret, checksum]) number = (number << 8n) | BigInt(byte);
  number <<= BigInt(CODE_CHARS * 5 - (SECRET_LEN + 1) * 8);
  let chars = "";
  for (let index = CODE_CHARS - 1; index >= 0; index -= 1) chars += ALPHABET[Number((number >> BigInt(5 * index)) & 31n)];
  return chars.match(/.{1,4}/g).join("-");
}

export async function parseRecoveryCode(code) {
  const cleaned = Array.from(code.toUpperCase()).filter((char) => !" -\t\n".includes(char))
    .map((char) => READ_AS[char] || char).join("");
  if (cleaned.length !== CODE_CHARS || Array.from(cleaned).some((char) => !ALPHABET.includes(char))) {
    throw new RecoveryCodeError(`A recovery code is ${CODE_CHARS} letters and digits, in groups of four.`);
  }
  let number = 0n;
  for (const char of cleaned) number = number * 32n + BigInt(ALPHABET.indexOf(char));
  const padding = BigInt(CODE_CHARS * 5 - (SECRET_LEN + 1) * 8);
  const padded = (number & ((1n << padding) - 1n)) !== 0n;
  number >>= padding;
  const data = new Uint8Array(SECRET_LEN + 1);
  for (let index = SECRET_LEN; index >= 0; index -= 1) {
    data[index] = Number(number & 255n);
    number >>= 8n;
  }
  const secret = data.slice(0, SECRET_LEN);
  const checksum = new Uint8Array(await crypto.subtle.digest("SHA-256", secret))[0];
  if (padded || checksum !== data[SECRET_LEN]) {
    throw new RecoveryCodeError("This recovery code has a typo: check each group of four against your copy.");
  }
  return secret;
}

// The deterministic half of RFC 9474's Blind (4.2) for RSABSSA-SHA384-PSS-Randomized: the 64-byte message (its
// 32-byte prefix included) and the PSS salt come from the secret, and so does r. The same request is rebuilt on
// any device that holds the secret, so a reply the server kept unblinds there too (finalize with blindrsa-ts).
const HASH_LEN = 48;
const SALT_LEN = 48;
const MESSAGE_LEN = 64;

const sha384 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-384", bytes));

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

export function os2ip(bytes) {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

export function i2osp(value, length) {
  const out = new Uint8Array(length);
  let rest = value;
  for (let index = length - 1; index >= 0; index -= 1) { out[index] = Number(rest & 255n); rest >>= 8n; }
  if (rest !== 0n) throw new Error("integer too large");
  return out;
}

function modPow(base, exponent, modulus) {
  let result = 1n;
  let power = base % modulus;
  for (let rest = exponent; rest > 0n; rest >>= 1n) {
    if (rest & 1n) result = (result * power) % modulus;
    power = (power * power) % modulus;
  }
  return result;
}

function gcd(a, b) {
  let [x, y] = [a, b];
  while (y) [x, y] = [y, x % y];
  return x;
}

function modInverse(value, modulus) {
  let [oldR, r] = [value % modulus, modulus];
  let [oldS, s] = [1n, 0n];
  while (r) {
    const quotient = oldR / r;
    [oldR, r] = [r, oldR - quotient * r];
    [oldS, s] = [s, oldS - quotient * s];
  }
  if (oldR !== 1n) throw new Error("blinding error: r has no inverse");
  return ((oldS % modulus) + modulus) % modulus;
}

async function mgf1(seed, length) {
  const chunks = [];
  for (let counter = 0; chunks.length * HASH_LEN < length; counter += 1) {
    chunks.push(await sha384(concat(seed, i2osp(BigInt(counter), 4))));
  }
  return concat(...chunks).slice(0, length);
}

// RFC 8017, 9.1.1, SHA-384 and MGF1-SHA-384, with the salt given.
export async function emsaPssEncode(message, emBits, salt) {
  const emLen = Math.ceil(emBits / 8);
  if (emLen < HASH_LEN + salt.length + 2) throw new Error("the key is too small for this encoding");
  const mHash = await sha384(message);
  const h = await sha384(concat(new Uint8Array(8), mHash, salt));
  const db = concat(new Uint8Array(emLen - salt.length - HASH_LEN - 2), Uint8Array.of(1), salt);
  const mask = await mgf1(h, emLen - HASH_LEN - 1);
  const masked = db.map((byte, index) => byte ^ mask[index]);
  masked[0] &= 0xff >> (8 * emLen - emBits);
  return concat(masked, h, Uint8Array.of(0xbc));
}

// The RSA public numbers of a key given as SPKI bytes (DER), a JWK {n, e} or a CryptoKey that may be exported.
async function publicNumbers(key) {
  let jwk = key;
  if (key instanceof Uint8Array || key instanceof ArrayBuffer) {
    key = await crypto.subtle.importKey("spki", key, { name: "RSA-PSS", hash: "SHA-384" }, true, ["verify"]);
  }
  if (typeof CryptoKey !== "undefined" && key instanceof CryptoKey) jwk = await crypto.subtle.exportKey("jwk", key);
  const number = (value) => os2ip(Uint8Array.from(atob(value.replace(/-/g, "+").replace(/_/g, "/")
    + "===".slice((value.length + 3) % 4)), (char) => char.charCodeAt(0)));
  return { n: number(jwk.n), e: number(jwk.e) };
}

// One credential's request, as app/anonymous/derive.credential makes it: {message, blindedMsg, inv}, all bytes
// (inv is k bytes, as blindrsa-ts's finalize takes it). `subject`: the petition's id, or the ballot's for "ballot".
export async function credential(secret, purpose, subject, keyId, publicKey) {
  if (!PURPOSES.includes(purpose)) throw new Error(`unknown purpose ${purpose}`);
  const { n, e } = await publicNumbers(publicKey);
  const modBits = n.toString(2).length;
  const k = Math.ceil(modBits / 8);
  const message = await derivedBytes(secret, purpose, subject, keyId, "message", MESSAGE_LEN);
  const salt = await derivedBytes(secret, purpose, subject, keyId, "salt", SALT_LEN);
  const r = os2ip(await derivedBytes(secret, purpose, subject, keyId, "blind", k + 32)) % n;
  const m = os2ip(await emsaPssEncode(message, modBits - 1, salt));
  if (gcd(m, n) !== 1n) throw new Error("invalid input");
  const inv = modInverse(r, n);
  const z = (m * modPow(r, e, n)) % n;
  return { message, blindedMsg: i2osp(z, k), inv: i2osp(inv, k) };
}
