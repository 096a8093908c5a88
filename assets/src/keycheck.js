// The browser wallet's check of every blind-signing key it is handed, before it blinds against it or keeps a
// credential signed by it (what the command-line client's app/anonymous/keycheck.py does, in the same order).
//
// A server that wants to recognise one worker's token can hand that worker's account a key of its own: the token
// it signs then says whose it is. So a key is accepted only if:
// - it is the key published to everyone (GET /api/v1/anonymous/keys, read without cookies);
// - for the signing key, its id is the key_id committed in entry 0 of the petition's signature log, read without
//   cookies under a checkpoint whose Ed25519 signature this browser verified (WebCrypto) with the log's key, and
//   proven in it by the RFC 9162 inclusion proof of entry 0;
// - it is the key this browser accepted the first time for that petition and purpose (a "petition-keys" record
//   in store.js's store, which also pins the log's key): a key that changes after first use is refused.
// Entry 0 commits the signing key only: the discussion key is held to the cookie-less list and to the first key
// accepted. The deployment does not publish its witnesses' keys to browsers, so cosignatures are not required
// here (`undersigned verify --witnesses` and `undersigned client --witness` require them).
import { getRecord, putRecord } from "./store.js";

export class KeyRefused extends Error {}

const WHAT = { sign: "signing key", discuss: "discussion key" };
const DASH = "\u2014";
const text = new TextEncoder();

const fromBase64 = (value) => Uint8Array.from(atob(value), (character) => character.charCodeAt(0));
const hex = (bytes) => Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
const same = (a, b) => a.length === b.length && a.every((byte, index) => byte === b[index]);

async function sha256(...parts) {
  const joined = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
}

const keyIdOf = async (name, raw) => (await sha256(text.encode(name), [0x0a, 0x01], raw)).slice(0, 4);

async function getPublic(path, petitionId) {
  const response = await fetch(path, { credentials: "omit", cache: "no-store", headers: { Accept: "application/json" } });
  if (!response.ok) {
    throw new KeyRefused(`Petition ${petitionId}'s signature log could not be read, so its signing key cannot be `
                         + "checked: nothing was sent. Reload to try again.");
  }
  return response.json();
}

// The checkpoint's size and root, once the log's signature over it verifies; throws otherwise.
async function verifiedCheckpoint(note, logKey, petitionId) {
  const refuse = (why) => new KeyRefused(`Petition ${petitionId}'s signature log ${why}: its signing key cannot be `
                                         + "trusted, so nothing was sent. Tell the organizers.");
  const [name, keyHex, encoded] = [logKey.split("+")[0], logKey.split("+")[1], logKey.split("+").slice(2).join("+")];
  const raw = fromBase64(encoded || "");
  if (raw.length !== 33 || raw[0] !== 0x01 || hex(await keyIdOf(name, raw.slice(1))) !== keyHex) {
    throw refuse("names a malformed key");
  }
  const cut = note.indexOf("\n\n");
  if (cut < 0) throw refuse("checkpoint is malformed");
  const body = note.slice(0, cut + 1);
  const [origin, sizeText, rootText] = body.split("\n");
  const size = Number(sizeText);
  const root = fromBase64(rootText || "");
  if (!origin.endsWith(`/petitions/${petitionId}`) || String(size) !== sizeText || size < 1 || root.length !== 32) {
    throw refuse("checkpoint is not this petition's");
  }
  const publicKey = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
  for (const line of note.slice(cut + 2).split("\n").filter(Boolean)) {
    const [dash, signer, signed] = line.split(" ");
    if (dash !== DASH || (signer !== name && signer !== origin)) continue; // witnesses' lines: not known here
    const signature = fromBase64(signed);
    if (signature.length !== 68 || !same(signature.slice(0, 4), await keyIdOf(signer, raw.slice(1)))) continue;
    if (await crypto.subtle.verify({ name: "Ed25519" }, publicKey, signature.slice(4), text.encode(body))) {
      return { size, root };
    }
    throw refuse("checkpoint's signature does not verify");
  }
  throw refuse("checkpoint is not signed by the log's key");
}

// RFC 9162 2.1.3.2: does `proof` take the leaf at `index` to `root` in a tree of `size`?
async function included(index, size, leaf, proof, root) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let hash = leaf;
  for (const node of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      hash = await sha256([0x01], node, hash);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      hash = await sha256([0x01], hash, node);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && same(hash, root);
}

// The log's key and the signing key id entry 0 commits, under a checkpoint verified here.
async function entryZero(petitionId, pinnedLogKey) {
  const base = `/api/v1/petitions/${petitionId}/log`;
  const head = await getPublic(base, petitionId);
  if (pinnedLogKey && head.log_key !== pinnedLogKey) {
    throw new KeyRefused(`Petition ${petitionId}'s signature log is now signed with a key other than the one this `
                         + "browser saw before: nothing was sent. Tell the organizers.");
  }
  const { size, root } = await verifiedCheckpoint(head.checkpoint, head.log_key, petitionId);
  const page = await getPublic(`${base}/entries?start=0&limit=1`, petitionId);
  const proof = await getPublic(`${base}/inclusion?index=0&size=${size}`, petitionId);
  let entry;
  try {
    const bytes = fromBase64(page.entries[0].entry);
    if (!(await included(0, size, await sha256([0x00], bytes), proof.proof.map(fromBase64), root))) throw new Error();
    entry = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new KeyRefused(`Entry 0 of petition ${petitionId}'s signature log is not in its signed checkpoint: `
                         + "nothing was sent. Tell the organizers.");
  }
  if (!entry || entry.kind !== "petition" || entry.petition !== petitionId) {
    throw new KeyRefused(`Entry 0 of petition ${petitionId}'s signature log is not this petition's: nothing was sent.`);
  }
  return { logKey: head.log_key, keyId: entry.key_id };
}

async function publishedKeyIds() {
  const response = await fetch("/api/v1/anonymous/keys", { credentials: "omit", cache: "no-store",
                                                           headers: { Accept: "application/json" } });
  if (!response.ok) throw new KeyRefused("The keys published to everyone could not be read: nothing was sent. Reload to try again.");
  return new Map((await response.json()).map((key) => [`${key.petition_id}:${key.purpose || "sign"}`, key.key_id]));
}

export const keysId = (petitionId) => `petition-keys:${petitionId}`;

// Throws KeyRefused, in words for the worker, unless every key in `items` ({petition_id, purpose, key_id}) passes;
// remembers each key accepted the first time. One call reads each petition's log once.
export async function requireKeys(database, items) {
  if (!items.length) return;
  const published = await publishedKeyIds();
  const logs = new Map();
  for (const item of items) {
    const petitionId = item.petition_id;
    const purpose = item.purpose || "sign";
    const what = WHAT[purpose] || "key";
    const record = (await getRecord(database, keysId(petitionId))) || { id: keysId(petitionId), kind: "petition-keys",
                                                                       petition: petitionId, keys: {}, logKey: null };
    const accepted = record.keys[purpose];
    if (accepted && accepted !== item.key_id) {
      throw new KeyRefused(`This browser refuses petition ${petitionId}'s ${what}: it changed since this browser first `
                           + "accepted it. A petition keeps one key; a new one shown to you could let the server "
                           + "recognise your anonymous signature. Nothing was sent. Tell the organizers.");
    }
    if (published.get(`${petitionId}:${purpose}`) !== item.key_id) {
      throw new KeyRefused(`This browser refuses petition ${petitionId}'s ${what}: the key your account was given differs `
                           + "from the one published to everyone, and a key of your own would let the server recognise "
                           + "your anonymous signature. Nothing was sent. Tell the organizers.");
    }
    if (purpose === "sign") {
      if (!logs.has(petitionId)) logs.set(petitionId, await entryZero(petitionId, record.logKey));
      const committed = logs.get(petitionId);
      if (committed.keyId !== item.key_id) {
        throw new KeyRefused(`This browser refuses petition ${petitionId}'s signing key: it is not the key the `
                             + "petition's signature log committed to when it opened, so it could be a key shown to "
                             + "you alone. Nothing was sent. Tell the organizers.");
      }
      record.logKey = record.logKey || committed.logKey;
    }
    record.keys = { ...record.keys, [purpose]: item.key_id };
    await putRecord(database, record);
  }
}
