// The wallet's one IndexedDB store, shared by the wallet (wallet.js), the wallet pages (wallet-page.js) and
// the anonymous comment form (app/static/anonymous-comments.js reads credentials by id, database version 1).
//
// Records, all keyed by `id`:
//   `${account}:${petitionId}`            a signing token       {account, petitionId, purpose, keyId, message, ...}
//   `${account}:${petitionId}:discuss`    a discussion credential (same shape)
//   `${account}:${petitionId}:signer`     a signer credential (same shape): proof of signing, exchanged for a
//       signers' poll's credential
//   `${account}:ballot:${ballotId}`       a poll's credential (same shape, with ballotId; petitionId null for a
//       pulse poll), with `answer` {choice, sentAt} once this device answered (to show it and allow a change)
//   `${account}:wallet`                   the wallet secret     {account, kind: "secret", secret, check, registered}
//   `${account}:wallet:stale:${check}`    a secret set aside    {account, kind: "stale-secret", secret, check, registered}
//       (one this device held while the account's wallet was another: kept, never deleted, so a secret that once
//       collected credentials is never lost to what a server said; it comes back if the server names its check)
//   `petition-keys:${petitionId}`         the keys accepted {kind: "petition-keys", petition, keys: {sign, discuss},
//       logKey, witnesses} (keycheck.js: the first key accepted per purpose, the log's key and the witnesses' verifier
//       keys; a change of key or a pinned witness no longer named is refused; no account, so allRecords never lists
//       it, and no petitionId, so no reader takes it for a credential)
//   `ballot-keys:${ballotId}`             the poll key accepted {kind: "ballot-keys", ballot, keyId} (keycheck.js)
//   `deployment-keys`                     what this site's logs showed {kind: "deployment-keys", witnesses,
//       discussionKeyNamed} (keycheck.js: every witness any petition's log head named, and whether any entry 0
//       named the discussion key; both then required of every petition; no account and no petitionId either)
// The secret (16 bytes, base64url) never leaves this browser except end to end to another of the worker's
// devices (wallet-page.js) or as the recovery code the worker writes down.
export const DB_NAME = "undersigned-wallet";
export const STORE = "tokens";

export function openStore() {
  return new Promise((resolve, reject) => {
    let request;
    try {
      request = indexedDB.open(DB_NAME, 1);
    } catch (error) {
      reject(error);
      return;
    }
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error("the wallet store is blocked by another tab"));
  });
}

export function transact(database, mode, work) {
  return new Promise((resolve, reject) => {
    const transaction = database.transaction(STORE, mode);
    const result = work(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error || new Error("the wallet store refused the write"));
  });
}

const secretId = (account) => `${account}:wallet`;

const staleId = (account, check) => `${account}:wallet:stale:${check}`;

// The secret record for this account, or null. Given the server's `serverCheck` (GET /api/v1/wallet's
// wallet_check, a string), a record whose check is another is null too: that secret is not the account's wallet
// (made here while the server could not be reached, or replaced), so this device holds no wallet. With no
// serverCheck (undefined or null: the account has no wallet yet) the record is returned as it is.
export async function getSecret(database, account, serverCheck = undefined) {
  const record = await transact(database, "readonly", (store) => store.get(secretId(account)));
  if (!record || record.kind !== "secret") return null;
  return typeof serverCheck === "string" && record.check !== serverCheck ? null : record;
}

// Keep `secret` (base64url) with its `check` (base64url): derive.js computes the check. `registered`: the
// server answered that this check is the account's wallet (or already named it).
export async function saveSecret(database, account, secret, check, { registered = false } = {}) {
  return transact(database, "readwrite",
                  (store) => store.put({ id: secretId(account), account, kind: "secret", secret, check, registered }));
}

// Note that the server took (201/200) or named this record's check: from now on no answer of a server deletes it.
export async function markRegistered(database, record) {
  if (record.registered) return record;
  const marked = { ...record, registered: true };
  await putRecord(database, marked);
  return marked;
}

// Move the account's secret record aside (it is not the account's wallet), in one transaction: never deleted.
export async function setAsideSecret(database, record) {
  return transact(database, "readwrite", (store) => {
    store.put({ ...record, id: staleId(record.account, record.check), kind: "stale-secret" });
    store.delete(record.id);
  });
}

// This device's wallet secret for the account whose wallet GET /api/v1/wallet names by `serverCheck`: the record,
// or null when it holds none or one whose check is another (that one is set aside first, so a page that then
// keeps the account's secret, by link or recovery code, never writes over it). With no serverCheck (the account
// has no wallet yet) the record as it is.
export async function heldSecret(database, account, serverCheck) {
  const record = await getSecret(database, account);
  if (record && typeof serverCheck === "string" && record.check !== serverCheck) {
    await setAsideSecret(database, record);
    return null;
  }
  return record;
}

// The secrets this device set aside for this account.
export async function staleSecrets(database, account) {
  return (await allRecords(database, account)).filter((record) => record.kind === "stale-secret");
}

// A secret set aside whose check the server names after all (a server that said otherwise for a while) becomes
// this device's wallet again. Returns the restored record, or null.
export async function restoreSecret(database, account, serverCheck) {
  const record = (await staleSecrets(database, account)).find((item) => item.check === serverCheck);
  if (!record) return null;
  const restored = { ...record, id: secretId(account), kind: "secret", registered: true };
  await transact(database, "readwrite", (store) => {
    store.put(restored);
    store.delete(record.id);
  });
  return restored;
}

export function toBase64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64url(value) {
  const text = atob(value.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((value.length + 3) % 4));
  return Uint8Array.from(text, (character) => character.charCodeAt(0));
}

// Forget this device's copy of the secret: only for a secret the server never took and nothing was derived from
// (one made here that lost the race to register: another device's wallet is the account's). sync.js decides.
export async function deleteSecret(database, account) {
  return transact(database, "readwrite", (store) => store.delete(secretId(account)));
}

export async function allRecords(database, account) {
  const all = await transact(database, "readonly", (store) => store.getAll());
  return all.filter((record) => record.account === account);
}

export async function putRecord(database, record) {
  return transact(database, "readwrite", (store) => store.put(record));
}

export async function getRecord(database, id) {
  return transact(database, "readonly", (store) => store.get(id));
}
