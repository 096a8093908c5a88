// The wallet's one IndexedDB store, shared by the wallet (wallet.js), the wallet pages (wallet-page.js) and
// the anonymous comment form (app/static/anonymous-comments.js reads credentials by id, database version 1).
//
// Records, all keyed by `id`:
//   `${account}:${petitionId}`            a signing token       {account, petitionId, purpose, keyId, message, ...}
//   `${account}:${petitionId}:discuss`    a discussion credential (same shape)
//   `${account}:wallet`                   the wallet secret     {account, kind: "secret", secret, check}
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

// The secret record for this account, or null.
export async function getSecret(database, account) {
  const record = await transact(database, "readonly", (store) => store.get(secretId(account)));
  return record && record.kind === "secret" ? record : null;
}

// Keep `secret` (base64url) with its `check` (base64url): derive.js computes the check.
export async function saveSecret(database, account, secret, check) {
  return transact(database, "readwrite",
                  (store) => store.put({ id: secretId(account), account, kind: "secret", secret, check }));
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

// Forget this device's copy of the secret (a secret made here that lost the race to register: another device's
// wallet is the account's).
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
