// The signer credential: the wallet's proof that it signed a petition, which a signers' poll takes in exchange
// for the poll's own credential (ballot.js). It is blind-signed under the petition's signers' key (purpose
// "signer", derive.js), so no signature, named or anonymous, can be tied to it.
// - A named signer's wallet collects it in the bundle (sync.js), while the named signature stands.
// - An anonymous signer's wallet asks for it in the anonymous submission itself (wallet.js: signer_blinded, sent
//   without cookies); the server answers in the 202 and keeps the reply under the token's nullifier, so another
//   device of the wallet rebuilds the same request from the secret and fetches the reply (fromKeptReply, below),
//   also without cookies: the reply is useless without the wallet's blinding factor.
import { credential, derivedBytes } from "./derive.js";
import { KeyRefused, requireKeys } from "./keycheck.js";
import { fromBase64url, getRecord, getSecret, toBase64url } from "./store.js";
import { SIGN, SIGNER, importKey, keepCredential, suite, tokenId } from "./sync.js";

const publicJson = async (path) => {
  const response = await fetch(path, { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer",
                                       headers: { Accept: "application/json" } });
  return { status: response.status, body: await response.json().catch(() => null) };
};

// The petition's signers' key as published to everyone, or null when it has none (or the server predates them).
// `shown`: the key a signers' poll names ({key_id, spki}, read without cookies), which is published while the
// petition is closed too, when the open keys no longer list it.
async function signersKey(petitionId, shown) {
  if (shown && shown.key_id && shown.spki) {
    return { purpose: SIGNER, petition_id: petitionId, key_id: shown.key_id, spki: shown.spki, shownToEveryone: true };
  }
  const { status, body } = await publicJson("/api/v1/anonymous/keys");
  if (status !== 200 || !Array.isArray(body)) return null;
  return body.find((key) => key.purpose === SIGNER && key.petition_id === petitionId) || null;
}

// This wallet's signer request for the petition: {item, made, publicKey, blinded}, or null when this device holds
// no wallet secret or the petition has no signers' key. Throws KeyRefused (keycheck.js) for a key this browser
// will not trust.
export async function signerRequest(database, account, petitionId, shown = null) {
  const secretRecord = await getSecret(database, account);
  if (!secretRecord) return null;
  const key = await signersKey(petitionId, shown);
  if (!key) return null;
  await requireKeys(database, [key]);
  const item = { purpose: SIGNER, petition_id: petitionId, key_id: key.key_id };
  const publicKey = await importKey(key.spki, key.key_id);
  const made = await credential(fromBase64url(secretRecord.secret), SIGNER, petitionId, key.key_id,
                                fromBase64url(key.spki));
  return { item, made, publicKey, blinded: toBase64url(made.blindedMsg) };
}

// Unblind the server's reply to `request` and keep the signer credential. Throws when the reply is not for it.
export async function keepSigner(database, account, request, blindSignature) {
  const signature = await suite.finalize(request.publicKey, request.made.message, fromBase64url(blindSignature),
                                         request.made.inv);
  return keepCredential(database, account, request.item, request.made.message, signature);
}

const hexOf = (bytes) => Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");

// The id of the key this wallet's signing token for the petition was under: the token's record if this device
// kept it, else the key entry 0 of the petition's log names (read without cookies; a wrong one only finds no reply).
async function signingKeyId(database, account, petitionId) {
  const token = await getRecord(database, tokenId(account, petitionId, SIGN));
  if (token && token.keyId) return token.keyId;
  const accepted = await getRecord(database, `petition-keys:${petitionId}`);
  if (accepted && accepted.keys && accepted.keys.sign) return accepted.keys.sign;
  const { status, body } = await publicJson(`/api/v1/petitions/${petitionId}/log/entries?start=0&limit=1`);
  if (status !== 200) return null;
  try {
    const bytes = fromBase64url(String(body.entries[0].entry));
    return JSON.parse(new TextDecoder().decode(bytes)).key_id || null;
  } catch (error) {
    return null;
  }
}

// The signer credential the server kept for this wallet's anonymous signature (written with the signature's batch,
// or made on another device): rebuilt from the secret and unblinded here. Returns the record, or null when there is
// none yet (the signature waits for its batch; this wallet did not sign the petition anonymously, or signed before
// signer credentials existed). `shown` as for signerRequest.
export async function fromKeptReply(database, account, petitionId, shown = null) {
  const secretRecord = await getSecret(database, account);
  if (!secretRecord) return null;
  const secret = fromBase64url(secretRecord.secret);
  const signKeyId = await signingKeyId(database, account, petitionId);
  if (!signKeyId) return null;
  const message = await derivedBytes(secret, SIGN, petitionId, signKeyId, "message", 64);
  const nullifier = hexOf(new Uint8Array(await crypto.subtle.digest("SHA-256", message)));
  const { status, body } = await publicJson(`/api/v1/petitions/${petitionId}/signer-replies/${nullifier}`);
  if (status !== 200 || !body || !body.blind_signature) return null;
  const request = await signerRequest(database, account, petitionId, shown);
  if (!request) return null;
  try {
    return await keepSigner(database, account, request, body.blind_signature);
  } catch (error) {
    if (error instanceof KeyRefused) throw error;
    return null; // a reply that does not unblind was not for this wallet's request
  }
}
