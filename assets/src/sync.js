// Collecting the wallet's credentials (wallet-spec section 4), shared by the sign panel's wallet (wallet.js)
// and the wallet page (wallet-page.js).
//
// Every credential derives from the account's one wallet secret (derive.js), so this device:
// - with no secret, when the account has no wallet yet (GET /api/v1/wallet's wallet_check is null): makes one,
//   keeps it, and registers its check (POST /api/v1/wallet/check); a 409 means another device won that race,
//   and this one forgets its secret and holds no wallet;
// - with no secret, when the account's wallet is elsewhere: collects nothing (the pages say how to bring it);
// - with a secret whose check is not the account's: sets it aside (store.js) and holds no wallet, so the worker
//   can link this device or type the recovery code; a secret the server once took (`registered`) or that
//   derived anything is never deleted, whatever a server answers (one that says "no wallet" then 409 could
//   otherwise make a browser destroy the wallet): only a secret never registered and never used is forgotten;
// - with the secret: rebuilds the request of every credential issued to the account that it does not hold and
//   unblinds the reply the server kept (one that does not unblind was collected by an older, random wallet on
//   another device: kept as "elsewhere"), then derives, blinds and asks for everything due, in one request.
// Credentials of the older, random wallets (status "held" without a secret) stay usable as they are.
import { RSABSSA } from "@cloudflare/blindrsa-ts";
import { credential, newSecret, walletCheck } from "./derive.js";
import { KeyRefused, requireKeys } from "./keycheck.js";
import { allRecords, deleteSecret, fromBase64url, getSecret, heldSecret, markRegistered, putRecord, restoreSecret,
         saveSecret, setAsideSecret, staleSecrets, toBase64url } from "./store.js";

export const suite = RSABSSA.SHA384.PSS.Randomized();

export const SIGN = "sign";
export const BALLOT = "ballot";
export const SIGNER = "signer";
// A credential's record id in store.js: the subject is the petition's id, or the ballot's for a ballot credential.
export const tokenId = (account, subject, purpose = SIGN) => {
  if (purpose === SIGN) return `${account}:${subject}`;
  if (purpose === BALLOT) return `${account}:ballot:${subject}`;
  return `${account}:${subject}:${purpose}`;
};
export const purposeOf = (item) => item.purpose || SIGN; // a server from before discussion credentials names none
// What a wallet item (due, issued, or a reply) is for: its ballot for a ballot credential, else its petition.
export const subjectOf = (item) => (purposeOf(item) === BALLOT ? item.ballot_id : item.petition_id);
const sameItem = (a, b) => purposeOf(a) === purposeOf(b) && subjectOf(a) === subjectOf(b);

// Records this device keeps that need nothing more from the server.
const SETTLED = new Set(["held", "submitted", "published", "elsewhere"]);

export async function importKey(spki, keyId) {
  const der = fromBase64url(spki);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
  if (hex !== keyId) throw new Error("the published key does not match its id");
  return crypto.subtle.importKey("spki", der, { name: "RSA-PSS", hash: "SHA-384" }, true, ["verify"]);
}

// Every purpose this wallet derives: a server lists the poll and signer credentials only to a wallet that names
// them (an older client could not derive them).
export const WALLET_PATH = "/api/v1/wallet?purposes=sign,discuss,ballot,signer";

export async function readWallet() {
  const response = await fetch(WALLET_PATH, { credentials: "same-origin", cache: "no-store",
                                                   headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => null);
  return response.ok ? body : null;
}

// POST /api/v1/wallet/check: "kept" (201 or 200), "elsewhere" (409: the account has another wallet), or the
// server's words for anything else.
export async function registerCheck(check, csrf) {
  const response = await fetch("/api/v1/wallet/check", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ check }),
  });
  const body = await response.json().catch(() => ({}));
  if (response.status === 200 || response.status === 201) return { outcome: "kept" };
  if (response.status === 409) return { outcome: "elsewhere", message: body.error && body.error.message };
  return { outcome: "failed", message: (body.error && body.error.message) || `The server said ${response.status}.` };
}

function heldRecord(account, item, message, signature) {
  const purpose = purposeOf(item);
  const record = { id: tokenId(account, subjectOf(item), purpose), account, petitionId: item.petition_id ?? null,
                   purpose, keyId: item.key_id, message: toBase64url(message), signature: toBase64url(signature),
                   status: "held", derived: true, submittedAt: null };
  if (purpose === BALLOT) record.ballotId = item.ballot_id;
  return record;
}

// A record for `item` that this device cannot use: its reply does not unblind with this wallet's request.
function elsewhereRecord(account, item) {
  const purpose = purposeOf(item);
  const record = { id: tokenId(account, subjectOf(item), purpose), account, petitionId: item.petition_id ?? null,
                   purpose, keyId: item.key_id, status: "elsewhere" };
  if (purpose === BALLOT) record.ballotId = item.ballot_id;
  return record;
}

// Keep a credential this wallet finalized outside the bundle (a signer credential answered at anonymous signing,
// or a ballot credential answered by an exchange): `item` is {purpose, petition_id, ballot_id?, key_id}.
export async function keepCredential(database, account, item, message, signature) {
  const record = heldRecord(account, item, message, signature);
  await putRecord(database, record);
  return record;
}

// A blinded request kept by an older, random wallet (before wallets had a secret): unblind its reply if the
// server kept one.
async function finalizeLegacy(database, account, records, issued) {
  for (const token of records.filter((record) => record.status === "blinded")) {
    const reply = issued.find((item) => purposeOf(item) !== BALLOT && item.petition_id === token.petitionId
                                        && purposeOf(item) === purposeOf(token) && item.key_id === token.keyId);
    if (!reply) continue;
    try {
      const publicKey = await importKey(token.spki, token.keyId);
      const signature = await suite.finalize(publicKey, fromBase64url(token.message),
                                             fromBase64url(reply.blind_signature), fromBase64url(token.inv));
      await putRecord(database, { id: token.id, account, petitionId: token.petitionId, purpose: purposeOf(token),
                                  keyId: token.keyId, message: token.message, signature: toBase64url(signature),
                                  status: "held", submittedAt: null });
    } catch (error) {
      await putRecord(database, { ...token, status: "lost" });
    }
  }
}

// Every key of `items` checked first (keycheck.js): a credential under a key shown to this account alone is never
// asked for nor kept. A refused signing or discussion key stops everything (KeyRefused); a refused poll or signers'
// key only leaves out every poll and signer item (the server takes those all or none), so a poll the browser will
// not trust costs no signature: returns {items, refused} (the KeyRefused's words, or null).
async function checkedKeys(database, items) {
  const later = (item) => purposeOf(item) === BALLOT || purposeOf(item) === SIGNER;
  const first = items.filter((item) => !later(item));
  await requireKeys(database, first);
  try {
    await requireKeys(database, items.filter(later));
  } catch (error) {
    if (!(error instanceof KeyRefused)) throw error;
    return { items: first, refused: error.message };
  }
  return { items, refused: null };
}

// Rebuild and unblind every issued credential this device does not hold. Returns how many it now holds anew;
// `notes.refused` gets the words of a poll or signers' key refused.
export async function recollect(database, account, secret, issued, notes = {}) {
  const kept = new Map((await allRecords(database, account)).map((record) => [record.id, record]));
  // Every key first: a credential signed by a key shown to this account alone is never kept.
  const { items: wanted, refused } = await checkedKeys(database, issued.filter((item) => {
    const record = kept.get(tokenId(account, subjectOf(item), purposeOf(item)));
    return !(record && SETTLED.has(record.status)) && item.spki;
  }));
  if (refused) notes.refused = refused;
  let collected = 0;
  for (const item of wanted) {
    const purpose = purposeOf(item);
    const publicKey = await importKey(item.spki, item.key_id);
    const made = await credential(secret, purpose, subjectOf(item), item.key_id, fromBase64url(item.spki));
    let signature;
    try {
      // Finalize verifies: a reply that was not for this wallet's request never becomes a credential.
      signature = await suite.finalize(publicKey, made.message, fromBase64url(item.blind_signature), made.inv);
    } catch (error) {
      await putRecord(database, elsewhereRecord(account, item));
      continue;
    }
    await putRecord(database, heldRecord(account, item, made.message, signature));
    collected += 1;
  }
  return collected;
}

async function collectDue(database, account, secret, allDue, csrf, notes) {
  const { items: due, refused } = await checkedKeys(database, allDue); // every key first: a refusal asks for nothing
  if (refused) notes.refused = refused;
  if (!due.length) return;
  const pending = [];
  for (const key of due) {
    const purpose = purposeOf(key);
    const publicKey = await importKey(key.spki, key.key_id);
    pending.push({ key, purpose, publicKey,
                   made: await credential(secret, purpose, subjectOf(key), key.key_id, fromBase64url(key.spki)) });
  }
  const response = await fetch("/api/v1/wallet/tokens", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ tokens: pending.map((item) => ({
      petition_id: item.key.petition_id ?? null, purpose: item.purpose,
      ...(item.purpose === BALLOT ? { ballot_id: item.key.ballot_id } : {}),
      blinded_message: toBase64url(item.made.blindedMsg) })) }),
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    // Another tab or device of this account asked at the same moment (409: nothing is due any more), or the
    // server refused: the kept replies are collected from GET /api/v1/wallet instead.
    const again = await readWallet();
    if (again) await recollect(database, account, secret, again.issued || [], notes);
    return;
  }
  for (const reply of body.tokens) {
    const item = pending.find((entry) => sameItem(entry.key, reply));
    if (!item) continue;
    const signature = await suite.finalize(item.publicKey, item.made.message, fromBase64url(reply.blind_signature),
                                           item.made.inv);
    await putRecord(database, heldRecord(account, reply, item.made.message, signature));
  }
}

// The account's wallet as this device sees it: "here" (this device holds the secret), "elsewhere" (the
// account's wallet was started on another device), or "none" (no wallet could be started: `message` says why).
// `setAside` is true when this device keeps a secret that is not the account's wallet (store.js).
export async function sync(database, account, csrf, wallet = null) {
  const state = wallet || await readWallet();
  if (!state) return { wallet: "none", message: "The server could not be asked about your wallet. Reload to try again." };
  const issued = state.issued || [];
  const records = await allRecords(database, account);
  await finalizeLegacy(database, account, records, issued);
  const serverCheck = state.wallet_check || null;
  // A secret that is not the account's wallet is set aside, so this device can take the wallet by link or code.
  let record = await heldSecret(database, account, serverCheck || undefined);
  if (!record && serverCheck) record = await restoreSecret(database, account, serverCheck);
  const elsewhere = async () => ({ wallet: "elsewhere", state,
                                   setAside: (await staleSecrets(database, account)).length > 0 });
  if (!record && serverCheck) return elsewhere();
  if (!record) {
    // Kept here first, registered second: a secret the server knows of is never one no device kept.
    const secret = newSecret();
    const check = toBase64url(await walletCheck(secret));
    await saveSecret(database, account, toBase64url(secret), check);
    const answer = await registerCheck(check, csrf);
    if (answer.outcome === "elsewhere") {
      await deleteSecret(database, account); // made just now, never registered, nothing derived from it
      return elsewhere();
    }
    if (answer.outcome !== "kept") return { wallet: "none", message: answer.message, state };
    record = await markRegistered(database, await getSecret(database, account));
  } else if (!serverCheck) {
    // Made here while the server could not be reached: register it now. (Or a server that no longer names the
    // account's wallet: registering again is harmless, and its answer never costs this device the secret.)
    const answer = await registerCheck(record.check, csrf);
    if (answer.outcome === "elsewhere") {
      if (!record.registered && !(await derivedFrom(database, account))) await deleteSecret(database, account);
      else await setAsideSecret(database, record);
      return elsewhere();
    }
    if (answer.outcome !== "kept") return { wallet: "none", message: answer.message, state };
    record = await markRegistered(database, record);
  } else {
    record = await markRegistered(database, record); // the server names its check (a linked or recovered secret)
  }
  const secret = fromBase64url(record.secret);
  // `refused`: why a poll's or signers' key was refused here (everything else was collected).
  const notes = { refused: null };
  await recollect(database, account, secret, issued, notes);
  if (state.due && state.due.length) await collectDue(database, account, secret, state.due, csrf, notes);
  return { wallet: "here", state, refused: notes.refused };
}

// Whether this device holds anything derived from a wallet secret (as the command-line client asks before it
// forgets one): such a secret is set aside, never deleted.
async function derivedFrom(database, account) {
  return (await allRecords(database, account)).some((record) => record.derived);
}

// One tab at a time: two tabs collecting at once would send the same requests twice.
export async function syncLocked(database, account, csrf, wallet = null) {
  if (navigator.locks) return navigator.locks.request("undersigned-wallet", () => sync(database, account, csrf, wallet));
  return sync(database, account, csrf, wallet);
}
