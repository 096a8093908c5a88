// The browser wallet's check of every blind-signing key it is handed, before it blinds against it or keeps a
// credential signed by it (what the command-line client's app/clients/keycheck.py does, in the same order).
//
// A server that wants to recognise one worker's token can hand that worker's account a key of its own: the token
// it signs then says whose it is. So a key is accepted only if:
// - it is the key published to everyone (GET /api/v1/anonymous/keys, read without cookies);
// - its id is the one committed in entry 0 of the petition's signature log (key_id for the signing key,
//   discussion_key_id for the discussion key), read without cookies under a checkpoint whose Ed25519 signature
//   this browser verified (WebCrypto) with the log's key, and proven in it by the RFC 9162 inclusion proof of
//   entry 0;
// - where the deployment names witnesses, that checkpoint is cosigned by every one of them (C2SP cosignature/v1,
//   Ed25519 over "cosignature/v1\ntime <seconds>\n" and the checkpoint's body): witnesses may lag, so the newest
//   checkpoint they all cosigned is used (any checkpoint holds entry 0). A log the witnesses saw is the log
//   everyone is shown, so a key committed in it cannot be one for this worker alone;
// - it is the key this browser accepted the first time for that petition and purpose (a "petition-keys" record
//   in store.js's store, which also pins the log's key and the witnesses): a key that changes after first use is
//   refused.
// The witnesses' verifier keys come with the log head (`witness_keys`, read without cookies). That the server
// names them is enough: the first set this browser sees is pinned per petition like the keys, and a later answer
// that drops or swaps a pinned witness is refused, so a server that wants to show one worker a log no witness saw
// has to do so from that worker's very first visit, naming no witness or one it runs itself, for good: a lie that
// anyone comparing the page's witnesses with the keys the witnesses' operators publish (`undersigned verify
// --policy`) can see.
// Logs opened before entry 0 named the discussion key lack `discussion_key_id`: their discussion key is held to
// the cookie-less list and to the first key accepted.
//
// What one petition's log shows binds the whole deployment (its witnesses are one setting, and so is the form of
// its entry 0), so this browser also keeps a "deployment-keys" record (IndexedDB is per origin: one deployment):
// - every witness a log head of this deployment named: a later head of ANY petition naming fewer is refused, so a
//   new petition is not a first visit in which a server may name no witness;
// - that some entry 0 of this deployment named the discussion key: from then on a discussion key whose entry 0 lacks
//   the field is refused (unless this browser accepted that petition's key before, when it stays held to it), so
//   an operator cannot open a new petition "as if before the field existed" to show one worker a key of their own.
// The petition's signers' key (purpose "signer", the signer credential that a signers' poll exchanges) is checked
// the same way, against entry 0's signer_key_id. A poll's own key is checked by requireBallotKey, below, against
// the poll's public record and entry 0 of the poll's own log.
import { getRecord, putRecord } from "./store.js";

export class KeyRefused extends Error {}

const WHAT = { sign: "signing key", discuss: "discussion key", signer: "signers' key" };
const USE = { sign: "your anonymous signature", discuss: "your anonymous comments",
              signer: "your answers to its signers' polls" };
// The field of entry 0 of a petition's log that commits each key (logs opened before a field existed lack it).
const COMMITTED = { sign: "key_id", discuss: "discussion_key_id", signer: "signer_key_id" };
// The deployment-keys flag saying some entry 0 of this deployment named that key.
const NAMED = { discuss: "discussionKeyNamed", signer: "signerKeyNamed" };
const DASH = "\u2014";
const text = new TextEncoder();

// The log API's binary fields are base64url without padding; C2SP text (checkpoints, verifier keys) is standard
// base64: this reads both.
const fromBase64 = (value) => Uint8Array.from(
  atob(value.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(value.length / 4) * 4, "=")),
  (character) => character.charCodeAt(0));
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

const NOTE = 0x01; // an Ed25519 note signature (the log's, or a witness's plain signature)
const COSIGNATURE = 0x04; // an Ed25519 cosignature/v1 (C2SP tlog-cosignature)

const keyIdOf = async (name, raw, type = NOTE) => (await sha256(text.encode(name), [0x0a, type], raw)).slice(0, 4);

async function getPublic(path, petitionId) {
  const response = await fetch(path, { credentials: "omit", cache: "no-store", headers: { Accept: "application/json" } });
  if (!response.ok) {
    throw new KeyRefused(`Petition ${petitionId}'s signature log could not be read, so the keys it commits to cannot `
                         + "be checked: nothing was sent. Reload to try again.");
  }
  return response.json();
}

// The checkpoint's size, root, body and signature lines, once the log's signature over it verifies; throws
// otherwise.
async function verifiedCheckpoint(note, logKey, petitionId) {
  const refuse = (why) => new KeyRefused(`Petition ${petitionId}'s signature log ${why}: the keys it commits to `
                                         + "cannot be trusted, so nothing was sent. Tell the organizers.");
  const [name, keyHex, encoded] = [logKey.split("+")[0], logKey.split("+")[1], logKey.split("+").slice(2).join("+")];
  const raw = fromBase64(encoded || "");
  if (raw.length !== 33 || raw[0] !== NOTE || hex(await keyIdOf(name, raw.slice(1))) !== keyHex) {
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
  const lines = note.slice(cut + 2).split("\n").filter(Boolean);
  for (const line of lines) {
    const [dash, signer, signed] = line.split(" ");
    if (dash !== DASH || (signer !== name && signer !== origin)) continue; // witnesses' lines: checked below
    const signature = fromBase64(signed);
    if (signature.length !== 68 || !same(signature.slice(0, 4), await keyIdOf(signer, raw.slice(1)))) continue;
    if (await crypto.subtle.verify({ name: "Ed25519" }, publicKey, signature.slice(4), text.encode(body))) {
      return { size, root, body, lines };
    }
    throw refuse("checkpoint's signature does not verify");
  }
  throw refuse("checkpoint is not signed by the log's key");
}

// A witness's verifier key (name+keyid+base64(type || key), type 0x04 or 0x01) ready to verify, or null.
async function witnessKey(vkey) {
  const [name, keyHex, ...rest] = String(vkey).split("+");
  let raw;
  try {
    raw = fromBase64(rest.join("+"));
  } catch (error) {
    return null;
  }
  if (!name || raw.length !== 33 || ![NOTE, COSIGNATURE].includes(raw[0])) return null;
  const id = await keyIdOf(name, raw.slice(1), raw[0]);
  if (hex(id) !== keyHex) return null;
  const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
  return { vkey, name, id, type: raw[0], key };
}

// Does one of `lines` carry this witness's valid signature over `body`? Lines of other names or key ids are
// ignored, as the signed-note specification asks.
async function cosignedBy(witness, body, lines) {
  for (const line of lines) {
    const [dash, signer, signed] = line.split(" ");
    if (dash !== DASH || signer !== witness.name) continue;
    let raw;
    try {
      raw = fromBase64(signed || "");
    } catch (error) {
      continue;
    }
    if (!same(raw.slice(0, 4), witness.id)) continue;
    let message;
    let signature;
    if (witness.type === COSIGNATURE && raw.length === 76) {
      const seconds = new DataView(raw.buffer, raw.byteOffset + 4, 8).getBigUint64(0, false);
      message = text.encode(`cosignature/v1\ntime ${seconds}\n${body}`);
      signature = raw.slice(12);
    } else if (witness.type === NOTE && raw.length === 68) {
      message = text.encode(body);
      signature = raw.slice(4);
    } else {
      continue;
    }
    if (await crypto.subtle.verify({ name: "Ed25519" }, witness.key, signature, message)) return true;
  }
  return false;
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

// Every checkpoint of the log, newest first (the witnesses may not have cosigned the latest yet).
async function olderCheckpoints(base, petitionId) {
  const found = [];
  for (let after = 0; ;) {
    const page = (await getPublic(`${base}/checkpoints?after=${after}&limit=1000`, petitionId)).checkpoints || [];
    if (!page.length) break;
    found.push(...page);
    const size = Number(String(page[page.length - 1]).split("\n")[1]);
    if (!(size > after)) break;
    after = size;
  }
  return found.reverse();
}

// The newest checkpoint the log signed and every one of `witnesses` cosigned; throws, in words, if none is.
async function witnessedCheckpoint(base, head, witnesses, petitionId) {
  const latest = await verifiedCheckpoint(head.checkpoint, head.log_key, petitionId);
  const allCosigned = async (checkpoint) => {
    for (const witness of witnesses) {
      if (!(await cosignedBy(witness, checkpoint.body, checkpoint.lines))) return false;
    }
    return true;
  };
  if (await allCosigned(latest)) return latest;
  for (const note of await olderCheckpoints(base, petitionId)) {
    const checkpoint = await verifiedCheckpoint(note, head.log_key, petitionId);
    if (await allCosigned(checkpoint)) return checkpoint;
  }
  const names = witnesses.map((witness) => witness.name).join(", ");
  throw new KeyRefused(`Petition ${petitionId}'s signature log is not cosigned by its witnesses (${names}), so this `
                       + "browser cannot tell it is the log everyone else is shown: nothing was sent. A witness that "
                       + "has not caught up yet cosigns within the hour, so try again later; if this lasts, tell "
                       + "the organizers.");
}

// The log's key, the witnesses and the key ids entry 0 commits, under a checkpoint verified here (and cosigned by
// every witness pinned or named). `record` is the petition's petition-keys record, `deployment` the
// deployment-keys record.
async function entryZero(petitionId, record, deployment) {
  const base = `/api/v1/petitions/${petitionId}/log`;
  const head = await getPublic(base, petitionId);
  if (record.logKey && head.log_key !== record.logKey) {
    throw new KeyRefused(`Petition ${petitionId}'s signature log is now signed with a key other than the one this `
                         + "browser saw before: nothing was sent. Tell the organizers.");
  }
  const named = Array.isArray(head.witness_keys) ? head.witness_keys.map(String) : [];
  const pinned = record.witnesses || [];
  const dropped = pinned.filter((vkey) => !named.includes(vkey));
  if (dropped.length) {
    throw new KeyRefused(`Petition ${petitionId}'s signature log no longer names the witness `
                         + `${dropped.map((vkey) => vkey.split("+")[0]).join(", ")}, which this browser saw watching `
                         + "it before. Without it this browser cannot tell the log shown to you is the one everyone "
                         + "else is shown, so nothing was sent. Tell the organizers.");
  }
  const unnamed = (deployment.witnesses || []).filter((vkey) => !named.includes(vkey) && !pinned.includes(vkey));
  if (unnamed.length) {
    throw new KeyRefused(`Petition ${petitionId}'s signature log does not name the witness `
                         + `${unnamed.map((vkey) => vkey.split("+")[0]).join(", ")}, which this browser saw watching `
                         + "this site's other petitions. Without it this browser cannot tell the log shown to you is "
                         + "the one everyone else is shown, so nothing was sent. Tell the organizers.");
  }
  const required = [...pinned, ...named.filter((vkey) => !pinned.includes(vkey))];
  const witnesses = [];
  for (const vkey of required) {
    const witness = await witnessKey(vkey);
    if (!witness) {
      throw new KeyRefused(`Petition ${petitionId}'s signature log names a witness key this browser cannot read, `
                           + "so it cannot check the log: nothing was sent. Tell the organizers.");
    }
    witnesses.push(witness);
  }
  const { size, root } = await witnessedCheckpoint(base, head, witnesses, petitionId);
  const page = await getPublic(`${base}/entries?start=0&limit=1`, petitionId);
  const proof = await getPublic(`${base}/inclusion?index=0&size=${size}`, petitionId);
  let entry;
  try {
    const bytes = fromBase64(String(page.entries[0].entry));
    if (!(await included(0, size, await sha256([0x00], bytes), proof.proof.map(fromBase64), root))) throw new Error();
    entry = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new KeyRefused(`Entry 0 of petition ${petitionId}'s signature log is not in its signed checkpoint: `
                         + "nothing was sent. Tell the organizers.");
  }
  if (!entry || entry.kind !== "petition" || entry.petition !== petitionId) {
    throw new KeyRefused(`Entry 0 of petition ${petitionId}'s signature log is not this petition's: nothing was sent.`);
  }
  // A log opened before entry 0 named the discussion (or signers') key has no such field: undefined, and the key is
  // held to the published list and the first key accepted. A field that is there and null commits to no such key.
  const committed = {};
  for (const [purpose, field] of Object.entries(COMMITTED)) {
    if (purpose === "sign" || field in entry) committed[purpose] = entry[field];
  }
  return { logKey: head.log_key, witnesses: required, committed };
}

async function publishedKeyIds() {
  const response = await fetch("/api/v1/anonymous/keys", { credentials: "omit", cache: "no-store",
                                                           headers: { Accept: "application/json" } });
  if (!response.ok) throw new KeyRefused("The keys published to everyone could not be read: nothing was sent. Reload to try again.");
  return new Map((await response.json()).map((key) => [publishedId(key), key.key_id]));
}

const publishedId = (key) => (key.purpose === "ballot" ? `ballot:${key.ballot_id}` : `${key.petition_id}:${key.purpose || "sign"}`);

export const keysId = (petitionId) => `petition-keys:${petitionId}`;
export const DEPLOYMENT_KEYS = "deployment-keys";

// Throws KeyRefused, in words for the worker, unless every key in `items` ({petition_id, purpose, key_id}) passes;
// remembers each key accepted the first time, with the log's key and witnesses. One call reads each petition's
// log once.
export async function requireKeys(database, items) {
  if (!items.length) return;
  const published = await publishedKeyIds();
  const deployment = (await getRecord(database, DEPLOYMENT_KEYS)) || { id: DEPLOYMENT_KEYS, kind: "deployment-keys",
                                                                      witnesses: [], discussionKeyNamed: false };
  const logs = new Map();
  for (const item of items) {
    if (item.purpose === "ballot") {
      await requireBallotKey(database, item);
      continue;
    }
    const petitionId = item.petition_id;
    const purpose = item.purpose || "sign";
    const what = WHAT[purpose] || "key";
    const record = (await getRecord(database, keysId(petitionId))) || { id: keysId(petitionId), kind: "petition-keys",
                                                                       petition: petitionId, keys: {}, logKey: null,
                                                                       witnesses: [] };
    const accepted = record.keys[purpose];
    if (accepted && accepted !== item.key_id) {
      throw new KeyRefused(`This browser refuses petition ${petitionId}'s ${what}: it changed since this browser first `
                           + "accepted it. A petition keeps one key; a new one shown to you could let the server "
                           + "recognise your anonymous signature. Nothing was sent. Tell the organizers.");
    }
    // A key the caller read itself without cookies (a signers' poll names its petition's signers' key, closed
    // petitions' included) counts as published to everyone; the open keys' list answers for the rest.
    const everyone = published.get(`${petitionId}:${purpose}`) ?? (item.shownToEveryone ? item.key_id : undefined);
    // A closed petition's signers' key is no longer among the open keys, yet its signers' polls (a ratification
    // opens after a response) still take the credentials made under it: entry 0 of the log must name it then.
    const closedSigners = purpose === "signer" && everyone === undefined;
    if (!closedSigners && everyone !== item.key_id) {
      throw new KeyRefused(`This browser refuses petition ${petitionId}'s ${what}: the key your account was given differs `
                           + "from the one published to everyone, and a key of your own would let the server recognise "
                           + "your anonymous signature. Nothing was sent. Tell the organizers.");
    }
    if (!logs.has(petitionId)) {
      const log = await entryZero(petitionId, record, deployment);
      logs.set(petitionId, log);
      // Pinned for every petition of this deployment from now on (a log verified here named them).
      deployment.witnesses = [...new Set([...(deployment.witnesses || []), ...log.witnesses])];
      for (const [named, flag] of Object.entries(NAMED)) deployment[flag] = deployment[flag] || named in log.committed;
      await putRecord(database, deployment);
    }
    const log = logs.get(petitionId);
    if (purpose in NAMED && !(purpose in log.committed) && !accepted && deployment[NAMED[purpose]]) {
      throw new KeyRefused(`This browser refuses petition ${petitionId}'s ${what}: entry 0 of the petition's `
                           + `signature log does not name it, though this site's logs named their ${what} before, `
                           + `so it could be a key shown to you alone, to recognise ${USE[purpose]}. Nothing was `
                           + "sent. Tell the organizers.");
    }
    if ((purpose in log.committed || closedSigners) && log.committed[purpose] !== item.key_id) {
      throw new KeyRefused(`This browser refuses petition ${petitionId}'s ${what}: it is not the key the `
                           + "petition's signature log committed to when it opened, so it could be a key shown to "
                           + `you alone, to recognise ${USE[purpose] || "you"}. Nothing was sent. Tell the organizers.`);
    }
    record.logKey = record.logKey || log.logKey;
    record.witnesses = log.witnesses;
    record.keys = { ...record.keys, [purpose]: item.key_id };
    await putRecord(database, record);
  }
}

export const ballotKeysId = (ballotId) => `ballot-keys:${ballotId}`;

// A ballot's blind-signing key is accepted only if it is the key the ballot shows everyone (GET /api/v1/ballots/{id},
// read without cookies), the one entry 0 of the ballot's own log commits (key_id), and the one this browser accepted
// the first time for that ballot (a "ballot-keys" record). A key of one worker's own would let the server recognise
// that worker's answer.
export async function requireBallotKey(database, item) {
  const ballotId = item.ballot_id;
  const refuse = (why) => new KeyRefused(`This browser refuses poll ${ballotId}'s key: ${why}, so it could be a key `
                                         + "shown to you alone, to recognise your answer. Nothing was sent. Tell "
                                         + "the organizers.");
  const read = async (path) => {
    const response = await fetch(path, { credentials: "omit", cache: "no-store", headers: { Accept: "application/json" } });
    if (!response.ok) {
      throw new KeyRefused(`Poll ${ballotId}'s public record could not be read, so its key cannot be checked: nothing `
                           + "was sent. Reload to try again.");
    }
    return response.json();
  };
  const record = (await getRecord(database, ballotKeysId(ballotId))) || { id: ballotKeysId(ballotId),
                                                                         kind: "ballot-keys", ballot: ballotId,
                                                                         keyId: null };
  if (record.keyId && record.keyId !== item.key_id) throw refuse("it changed since this browser first accepted it");
  const shown = await read(`/api/v1/ballots/${ballotId}`);
  if (!shown.key || shown.key.key_id !== item.key_id) throw refuse("it differs from the key the poll shows everyone");
  const page = await read(`/api/v1/ballots/${ballotId}/log/leaves?start=0&end=1`);
  let entry;
  try {
    entry = JSON.parse(new TextDecoder().decode(fromBase64(String(page.leaves[0].entry))));
  } catch (error) {
    throw refuse("the first entry of the poll's log cannot be read");
  }
  if (!entry || entry.kind !== "ballot" || entry.ballot !== ballotId) throw refuse("the poll's log does not open with this poll");
  if (entry.key_id !== item.key_id) throw refuse("it is not the key the poll's log committed to when it opened");
  if (!record.keyId) await putRecord(database, { ...record, keyId: item.key_id });
}
