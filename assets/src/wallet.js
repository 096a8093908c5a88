// The anonymous wallet (RFC 9474 blind signatures, via @cloudflare/blindrsa-ts).
//
// On every signed-in page it asks, in one request, for everything due: for every open petition that takes
// anonymous signatures, a signing token (purpose "sign") and a discussion credential (purpose "discuss") this
// account holds none of. The server signs them blind, and they stay in this browser (IndexedDB, one store).
// On a petition's sign panel it offers "Nobody: sign anonymously", which sends the token without cookies, and
// it spends the token when signing with a name, so nobody can sign both ways. The discussion credential is
// never spent: app/static/anonymous-comments.js reads it to post, edit and delete anonymous comments without
// cookies.
// Built into app/static/wallet.js by `make assets`.
import { RSABSSA } from "@cloudflare/blindrsa-ts";

const DB_NAME = "undersigned-wallet";
const STORE = "tokens";
const suite = RSABSSA.SHA384.PSS.Randomized();

function meta(name) {
  const element = document.querySelector(`meta[name="${name}"]`);
  return element ? element.getAttribute("content") : null;
}

function toBase64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(value) {
  const text = atob(value.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((value.length + 3) % 4));
  return Uint8Array.from(text, (character) => character.charCodeAt(0));
}

function openStore() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function transact(database, mode, work) {
  return new Promise((resolve, reject) => {
    const transaction = database.transaction(STORE, mode);
    const result = work(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    transaction.onerror = () => reject(transaction.error);
  });
}

// A signing token keeps the id it always had; a discussion credential sits beside it (anonymous-comments.js reads
// it by this id).
const SIGN = "sign";
const tokenId = (account, petitionId, purpose = SIGN) =>
  purpose === SIGN ? `${account}:${petitionId}` : `${account}:${petitionId}:${purpose}`;
const purposeOf = (item) => item.purpose || SIGN; // a server from before discussion credentials names none

async function importKey(spki, keyId) {
  const der = fromBase64url(spki);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
  if (hex !== keyId) throw new Error("the published key does not match its id");
  return crypto.subtle.importKey("spki", der, { name: "RSA-PSS", hash: "SHA-384" }, true, ["verify"]);
}

async function allTokens(database, account) {
  const all = await transact(database, "readonly", (store) => store.getAll());
  return all.filter((token) => token.account === account);
}

// A blinded request is kept before it is sent, so a reply lost to a closed page can be collected later.
async function finalizeIssued(database, account, issued) {
  const blinded = (await allTokens(database, account)).filter((token) => token.status === "blinded");
  for (const token of blinded) {
    const reply = issued.find((item) => item.petition_id === token.petitionId && purposeOf(item) === purposeOf(token)
                                        && item.key_id === token.keyId);
    if (!reply) continue;
    let signature;
    try {
      const publicKey = await importKey(token.spki, token.keyId);
      // Finalize verifies: a signature that does not check out is never kept.
      signature = await suite.finalize(publicKey, fromBase64url(token.message),
                                       fromBase64url(reply.blind_signature), fromBase64url(token.inv));
    } catch (error) {
      // Two tabs blinded at once and the other's request won: this reply is not for the message kept here.
      await saveToken(database, { ...token, status: "lost" });
      continue;
    }
    await saveToken(database, { id: token.id, account, petitionId: token.petitionId, purpose: purposeOf(token),
                                keyId: token.keyId, message: token.message, signature: toBase64url(signature),
                                status: "held", submittedAt: null });
  }
}

// The keys everyone is shown, fetched without cookies: a server that gave this account a key of its own (to
// recognise its tokens later) would be caught here.
async function publishedKeyIds() {
  const response = await fetch("/api/v1/anonymous/keys", { credentials: "omit", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error("the published keys could not be read");
  return new Map((await response.json()).map((key) => [`${key.petition_id}:${purposeOf(key)}`, key.key_id]));
}

// Ask for everything due (tokens and discussion credentials), in one request; keep what comes back.
async function sync(database, account, csrf) {
  const wallet = await fetch("/api/v1/wallet", { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!wallet.ok) return;
  const { due, issued } = await wallet.json();
  await finalizeIssued(database, account, issued);
  if (!due.length) return;
  const published = await publishedKeyIds();
  const pending = [];
  for (const key of due) {
    const purpose = purposeOf(key);
    if (published.get(`${key.petition_id}:${purpose}`) !== key.key_id) {
      throw new Error("this account was shown a key that is not the petition's published key");
    }
    const publicKey = await importKey(key.spki, key.key_id);
    const message = suite.prepare(crypto.getRandomValues(new Uint8Array(32)));
    const { blindedMsg, inv } = await suite.blind(publicKey, message);
    pending.push({ key, purpose, blindedMsg });
    await saveToken(database, { id: tokenId(account, key.petition_id, purpose), account, petitionId: key.petition_id,
                                purpose, keyId: key.key_id, spki: key.spki, message: toBase64url(message),
                                inv: toBase64url(inv), status: "blinded" });
  }
  const response = await fetch("/api/v1/wallet/tokens", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ tokens: pending.map((item) => ({
      petition_id: item.key.petition_id, purpose: item.purpose, blinded_message: toBase64url(item.blindedMsg) })) }),
  });
  if (!response.ok) return; // another tab asked at the same moment, or nothing is due any more
  await finalizeIssued(database, account, (await response.json()).tokens);
}

async function getToken(database, account, petitionId) {
  return transact(database, "readonly", (store) => store.get(tokenId(account, petitionId)));
}

async function saveToken(database, token) {
  return transact(database, "readwrite", (store) => store.put(token));
}

// Without cookies: nothing in the request says who sends it.
async function submitAnonymously(token) {
  const response = await fetch("/api/v1/anonymous/signatures", {
    method: "POST", credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ petition_id: token.petitionId, message: token.message, signature: token.signature }),
  });
  const body = await response.json().catch(() => ({}));
  return { ok: response.status === 202, status: response.status, body };
}

async function isPublished(token) {
  let cursor = "";
  for (let page = 0; page < 200; page += 1) {
    const response = await fetch(`/api/v1/petitions/${token.petitionId}/anonymous-signatures?limit=5000` +
                                 (cursor ? `&cursor=${cursor}` : ""), { credentials: "omit" });
    if (!response.ok) return false;
    const ledger = await response.json();
    if (ledger.entries.some((entry) => entry.message === token.message)) return true;
    if (!ledger.next_cursor) return false;
    cursor = ledger.next_cursor;
  }
  return false;
}

function minutes(seconds) {
  if (seconds >= 7200) return `${Math.ceil(seconds / 3600)} hours`;
  const value = Math.max(1, Math.ceil(seconds / 60));
  return `${value} minute${value === 1 ? "" : "s"}`;
}

// The sign panel. Its submit handler is attached at once: a form sent before the wallet has its token would
// be refused (a member who was issued the token signs with it), so such a submission waits for the wallet.
function watchSignPanel() {
  const form = document.querySelector("form[data-sign-form]");
  if (!form) return null;
  const panel = { form, token: null, settled: false };
  let settle;
  panel.ready = new Promise((resolve) => { settle = resolve; });
  panel.settle = () => { panel.settled = true; settle(); };
  const fillToken = () => {
    // Signing with a name spends the token (the server records it), so it cannot also be used anonymously.
    if (panel.token && panel.token.status === "held") {
      form.querySelector("input[name=token_message]").value = panel.token.message;
      form.querySelector("input[name=token_signature]").value = panel.token.signature;
    }
  };
  // Below the minimum group size the page asks the signer to confirm: the box counts only for an anonymous
  // signature (disabled, it is not required), and the submit handler checks it again.
  const confirm = form.querySelector("input[data-anonymous-confirm]");
  form.addEventListener("change", () => {
    const chosen = form.querySelector("input[name=visibility]:checked");
    if (confirm) confirm.disabled = !(chosen && chosen.value === "anonymous");
  });
  form.addEventListener("submit", async (event) => {
    const visibility = form.querySelector("input[name=visibility]:checked");
    if (visibility && visibility.value === "anonymous") {
      event.preventDefault();
      if (confirm && !confirm.checked) {
        confirm.disabled = false;
        const status = document.querySelector("[data-anonymous-status]");
        if (status) status.textContent = "Read the warning and tick the box to sign anonymously anyway.";
        confirm.focus();
        return;
      }
      await panel.signAnonymously();
      return;
    }
    if (!panel.settled) {
      event.preventDefault();
      await panel.ready;
      fillToken();
      form.submit();
      return;
    }
    fillToken();
  });
  return panel;
}

async function enhanceSignPanel(panel, database, account) {
  const { form } = panel;
  const petitionId = Number(form.getAttribute("data-petition-id"));
  const batchSeconds = Number(form.getAttribute("data-batch-seconds") || "300");
  // A batch waits for enough signatures to hide among, at most the maximum delay (in whole hours, plus one).
  const waitSeconds = batchSeconds
    ? Math.max(batchSeconds, Number(form.getAttribute("data-max-delay-seconds") || "0") + 3600) : 0;
  const status = document.querySelector("[data-anonymous-status]");
  const choice = form.querySelector("[data-anonymous-choice]");
  const token = await getToken(database, account, petitionId);
  panel.token = token || null;
  if (!token) return;

  const showSigned = (text) => {
    status.textContent = text;
    form.hidden = true;
  };
  if (token.status === "published") {
    showSigned("You signed anonymously; your signature is published and counted.");
    return;
  }
  if (token.status === "submitted") {
    if (await isPublished(token)) {
      // Counted: the message is no longer needed, and kept it would tie this browser to the published entry.
      await saveToken(database, { id: token.id, account, petitionId: token.petitionId, status: "published" });
      showSigned("You signed anonymously; your signature is published and counted.");
      return;
    }
    // Not there yet: after a batch interval (and a margin), send it again; the server refuses a second copy.
    if (Date.now() - token.submittedAt > (waitSeconds + batchSeconds + 60) * 1000) {
      const again = await submitAnonymously(token);
      if (again.ok) token.submittedAt = Date.now();
      await saveToken(database, token);
    }
    showSigned(`You signed anonymously: queued, it will appear within ${minutes(waitSeconds)}.`);
    return;
  }
  if (token.status !== "held") return;
  if (choice) choice.hidden = false;
  panel.signAnonymously = async () => {
    const sent = await submitAnonymously(token);
    if (sent.ok) {
      token.status = "submitted";
      token.submittedAt = Date.now();
      await saveToken(database, token);
      showSigned(`You signed anonymously: queued, it will appear within ${minutes(waitSeconds)}.`);
    } else {
      status.textContent = (sent.body.error && sent.body.error.message) || "Your signature could not be sent.";
    }
  };
}

async function main() {
  const account = meta("undersigned-account");
  const csrf = meta("csrf-token");
  if (!account || !csrf || !window.indexedDB || !window.crypto || !crypto.subtle) return;
  const panel = watchSignPanel();
  try {
    const database = await openStore();
    // One tab at a time: two tabs blinding for the same petition at once would lose one of the tokens.
    if (navigator.locks) {
      await navigator.locks.request("undersigned-wallet", () => sync(database, account, csrf));
    } else {
      await sync(database, account, csrf);
    }
    if (panel) await enhanceSignPanel(panel, database, account);
    document.documentElement.setAttribute("data-wallet-ready", "true");
  } finally {
    if (panel) panel.settle(); // a waiting submission goes ahead, with the token if the wallet has one
  }
}

main().catch(() => {
  // The wallet is an enhancement: a failure leaves the page as it was, and the next page load tries again.
  document.documentElement.setAttribute("data-wallet-ready", "error");
});
