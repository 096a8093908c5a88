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

export function derivedBytes(secret, purpose, keyId, what, length) {
  return okm(secret, `${purpose}/${keyId}/${what}`, length);
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
