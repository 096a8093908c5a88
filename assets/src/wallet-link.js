// Linking a device (/wallet/link): the browser's half of app/clients/linking.py, byte for byte (read its
// docstring for the protocol). A device that holds the wallet secret shows a code and a QR code of
// `<origin>/wallet/link#<code>` (the fragment never reaches the server); a device without it takes the code,
// receives the secret sealed to a key only the two devices derive, checks it against the account's wallet_check
// and keeps it. Native Web Crypto only: ECDH P-256, HKDF, HMAC and AES-GCM. Built into app/static/wallet-link.js.
import qrcode from "qrcode-generator";
import { walletCheck } from "./derive.js";
import { fromBase64url, heldSecret, openStore, saveSecret, toBase64url } from "./store.js";
import { syncLocked } from "./sync.js";

const PATH = "/api/v1/wallet/link";
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; // Crockford's base32
const READ_AS = { I: "1", L: "1", O: "0" };
const CODE_CHARS = 12;
// The most either device waits, by its own clock, whatever the server reports: A from its code being accepted
// (min(expires_in, 600) s), B from its answer. A server stalling a session to guess the 60-bit code offline gets
// no longer than that.
const LIFETIME_MS = 600 * 1000;
const EXPIRY_SLACK_MS = 5000; // a 404 this close to A's deadline is the session expiring
const lifetime = (answer) => {
  const reported = answer && answer.expires_in;
  return Number.isInteger(reported) && reported > 0 ? Math.min(reported * 1000, LIFETIME_MS) : LIFETIME_MS;
};
const text = new TextEncoder();
const SALT = text.encode("undersigned/link/v1");
const SEAL_INFO = text.encode("undersigned/link/v1/seal");

// The protocol ---------------------------------------------------------------------------------------------

class FormatError extends Error {}

export function newCode() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  let number = 0n;
  for (const byte of bytes) number = (number << 8n) | BigInt(byte);
  let code = "";
  for (let index = CODE_CHARS - 1; index >= 0; index -= 1) {
    code += ALPHABET[Number((number >> BigInt(5 * index)) & 31n)];
  }
  return code;
}

export function normalise(code) {
  const cleaned = Array.from(code.toUpperCase()).filter((char) => !" -\t\n".includes(char))
    .map((char) => READ_AS[char] || char).join("");
  if (cleaned.length !== CODE_CHARS || Array.from(cleaned).some((char) => !ALPHABET.includes(char))) {
    throw new FormatError("not a linking code");
  }
  return cleaned;
}

const display = (code) => code.match(/.{4}/g).join("-");

async function hkdf(ikm, salt, info) {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, 256));
}

const codeKey = (code, purpose) => hkdf(text.encode(code), SALT, text.encode(purpose));

async function mac(key, data) {
  const imported = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", imported, data));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function same(left, right) {
  if (left.length !== right.length) return false;
  let difference = 0;
  for (let index = 0; index < left.length; index += 1) difference |= left[index] ^ right[index];
  return difference === 0;
}

async function keyPair() {
  const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
  return { privateKey: pair.privateKey, raw: new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)) };
}

async function sealingKey(code, privateKey, peerRaw, usage) {
  const peer = await crypto.subtle.importKey("raw", peerRaw, { name: "ECDH", namedCurve: "P-256" }, false, []);
  const shared = new Uint8Array(await crypto.subtle.deriveBits({ name: "ECDH", public: peer }, privateKey, 256));
  const bits = await hkdf(shared, await codeKey(code, "seal"), SEAL_INFO);
  return crypto.subtle.importKey("raw", bits, "AES-GCM", false, [usage]);
}

// Talking to the server ------------------------------------------------------------------------------------

class Refused extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

class Stop extends Error {} // a failure whose words are one of the page's messages (data-message=this.message)

function meta(name) {
  const element = document.querySelector(`meta[name="${name}"]`);
  return element ? element.getAttribute("content") : null;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = meta("csrf-token") || "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, credentials: "same-origin", cache: "no-store",
                                   body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new Stop("network");
  }
  const answer = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401) throw new Stop("signed-out");
  return { status: response.status, body: answer };
}

function refusal({ status, body }) {
  const message = body && body.error && body.error.message;
  return message ? new Refused(status, message) : new Stop("network");
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// The page -------------------------------------------------------------------------------------------------

const page = document.querySelector("[data-link-page]");
const messages = document.querySelector("[data-link-messages]");
const errorBox = page && page.querySelector("[data-link-error]");

function message(name) {
  const element = messages.querySelector(`[data-message="${name}"]`);
  return element ? element.textContent.trim() : name;
}

function showError(error, focus) {
  errorBox.textContent = error instanceof Stop ? message(error.message)
    : error instanceof Refused ? error.message : message("network");
  errorBox.hidden = false;
  (focus || errorBox).focus();
}

function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

function panel(name) {
  for (const element of page.querySelectorAll("[data-link-panel]")) element.hidden = element.dataset.linkPanel !== name;
  return page.querySelector(`[data-link-panel="${name}"]`);
}

function qrSvg(url) {
  const qr = qrcode(0, "M");
  qr.addData(url);
  qr.make();
  const count = qr.getModuleCount();
  const namespace = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(namespace, "svg");
  svg.setAttribute("viewBox", `-4 -4 ${count + 8} ${count + 8}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", page.querySelector("[data-link-code]").dataset.qrLabel || "QR code");
  const background = document.createElementNS(namespace, "rect");
  for (const [name, value] of [["x", -4], ["y", -4], ["width", count + 8], ["height", count + 8], ["fill", "#fff"]]) {
    background.setAttribute(name, value);
  }
  svg.appendChild(background);
  let path = "";
  for (let row = 0; row < count; row += 1) {
    for (let column = 0; column < count; column += 1) {
      if (qr.isDark(row, column)) path += `M${column} ${row}h1v1h-1z`;
    }
  }
  const modules = document.createElementNS(namespace, "path");
  modules.setAttribute("d", path);
  modules.setAttribute("fill", "#000");
  svg.appendChild(modules);
  svg.setAttribute("data-url", url);
  return svg;
}

// Device A: shows the code ---------------------------------------------------------------------------------

function showCode(database, account, record) {
  const section = panel("show");
  const start = section.querySelector("[data-link-start]");
  const offerBox = section.querySelector("[data-link-offer]");
  const linked = section.querySelector("[data-link-linked]");
  const countdown = section.querySelector("[data-link-countdown]");
  let run = 0; // each press of Show a code starts a run; an older run stops at its next step
  let open = false;

  function reset() {
    run += 1;
    open = false;
    offerBox.hidden = true;
    start.hidden = false;
    start.disabled = false;
  }

  async function ensureRegistered() {
    const secret = fromBase64url(record.secret);
    const check = toBase64url(await walletCheck(secret));
    const wallet = await api("GET", "/api/v1/wallet");
    if (wallet.status !== 200) throw refusal(wallet);
    if (wallet.body.wallet_check && wallet.body.wallet_check !== check) throw new Stop("other-wallet");
    if (!wallet.body.wallet_check) {
      const registered = await api("POST", "/api/v1/wallet/check", { check });
      if (registered.status === 409) throw new Stop("other-wallet");
      if (registered.status >= 400) throw new Stop("not-registered");
    }
    return secret;
  }

  async function begin() {
    const mine = ++run;
    clearError();
    linked.hidden = true;
    start.disabled = true;
    const secret = await ensureRegistered();
    const code = newCode();
    const pair = await keyPair();
    const opened = await api("POST", PATH, {
      offer_key: toBase64url(pair.raw),
      offer_proof: toBase64url(await mac(await codeKey(code, "offer"), pair.raw)),
      code_proof: toBase64url(await mac(await codeKey(code, "check"), pair.raw)),
    });
    if (opened.status !== 201) throw refusal(opened);
    open = true;
    const qrBox = section.querySelector("[data-link-qr]");
    qrBox.replaceChildren(qrSvg(`${location.origin}/wallet/link#${code}`));
    section.querySelector("[data-link-code]").textContent = display(code);
    offerBox.hidden = false;
    start.hidden = true;
    const deadline = performance.now() + lifetime(opened.body);
    const tick = () => {
      const left = Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
      const time = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
      countdown.textContent = message("countdown").replace("{time}", time);
      return left;
    };
    tick();
    let sealed = false;
    const giveUp = async (name) => {
      open = false;
      await api("DELETE", PATH).catch(() => {}); // the code stops working now, whatever the server would allow
      return new Stop(name);
    };
    while (mine === run) {
      await sleep(sealed ? 1000 : 2000);
      if (mine !== run) return;
      const current = await api("GET", PATH);
      if (mine !== run) return;
      // "Linked." only on the server's word that the new device collected the wallet (its /done), shown once.
      if (current.status === 200 && current.body && current.body.state === "done") break;
      tick();
      if (current.status === 404) {
        if (!sealed) throw new Stop(performance.now() >= deadline - EXPIRY_SLACK_MS ? "expired" : "closed");
        throw new Stop(performance.now() >= deadline - EXPIRY_SLACK_MS ? "not-collected" : "closed-sealed");
      }
      if (current.status !== 200) throw refusal(current);
      if (performance.now() >= deadline) throw await giveUp(sealed ? "not-collected" : "expired");
      const session = current.body;
      if (session.offer_key !== toBase64url(pair.raw)) throw new Stop("replaced");
      if (session.state === "answered" && !sealed) {
        const answerKey = fromBase64url(session.answer_key);
        const expected = await mac(await codeKey(code, "answer"), concat(answerKey, pair.raw));
        if (!same(expected, fromBase64url(session.answer_proof))) {
          await api("DELETE", PATH);
          throw new Stop("tampered-answer");
        }
        const iv = crypto.getRandomValues(new Uint8Array(12));
        const key = await sealingKey(code, pair.privateKey, answerKey, "encrypt");
        const box = new Uint8Array(await crypto.subtle.encrypt(
          { name: "AES-GCM", iv, additionalData: concat(pair.raw, answerKey) }, key, secret));
        const posted = await api("POST", `${PATH}/sealed`, { sealed: toBase64url(concat(iv, box)) });
        if (posted.status !== 200) throw refusal(posted);
        sealed = true;
        open = false; // sealed: closing this page now must not cancel what the other device is about to collect
      }
    }
    if (mine !== run) return;
    open = false;
    offerBox.hidden = true;
    start.hidden = false;
    start.disabled = false;
    linked.hidden = false;
    linked.focus();
  }

  start.addEventListener("click", () => {
    const mine = run + 1;
    begin().catch((error) => {
      if (mine !== run) return;
      reset();
      showError(error);
    });
  });
  section.querySelector("[data-link-cancel]").addEventListener("click", () => {
    reset();
    api("DELETE", PATH).catch(() => {});
    start.focus();
  });
  // A closed page cancels its code at once: the other device is told to start again instead of waiting it out.
  window.addEventListener("pagehide", () => {
    if (!open) return;
    open = false;
    fetch(PATH, { method: "DELETE", keepalive: true, credentials: "same-origin",
                  headers: { "X-CSRF-Token": meta("csrf-token") || "" } }).catch(() => {});
  });
}

// Device B: takes the code ---------------------------------------------------------------------------------

function takeCode(database, account, prefill) {
  const section = panel("enter");
  const form = section.querySelector("[data-link-form]");
  const input = section.querySelector("[data-link-input]");
  const submit = section.querySelector("[data-link-submit]");
  const receiving = section.querySelector("[data-link-receiving]");
  const received = section.querySelector("[data-link-received]");
  if (prefill) input.value = prefill;

  async function link() {
    let code;
    try {
      code = normalise(input.value);
    } catch (error) {
      input.setAttribute("aria-invalid", "true");
      throw new Stop("format");
    }
    input.removeAttribute("aria-invalid");
    const wallet = await api("GET", "/api/v1/wallet");
    if (wallet.status !== 200) throw refusal(wallet);
    if (!wallet.body.wallet_check) throw new Stop("not-registered");
    const current = await api("GET", PATH);
    if (current.status !== 200) throw refusal(current);
    if (!current.body.offer_key || !current.body.offer_proof) throw new Stop("used");
    const offerKey = fromBase64url(current.body.offer_key);
    // The offer's proof first: no answer goes out for a key the device showing this code did not make. A typo
    // fails here the same way, so the words cover both, and nothing is cancelled.
    const offerProof = await mac(await codeKey(code, "offer"), offerKey);
    if (!same(offerProof, fromBase64url(current.body.offer_proof))) {
      input.setAttribute("aria-invalid", "true");
      throw new Stop("mismatch");
    }
    const pair = await keyPair();
    const answered = await api("POST", `${PATH}/answer`, {
      code_proof: toBase64url(await mac(await codeKey(code, "check"), offerKey)),
      answer_key: toBase64url(pair.raw),
      answer_proof: toBase64url(await mac(await codeKey(code, "answer"), concat(pair.raw, offerKey))),
    });
    if (answered.status !== 200) {
      if (answered.status === 422) input.setAttribute("aria-invalid", "true");
      throw refusal(answered);
    }
    receiving.hidden = false;
    const deadline = performance.now() + lifetime(answered.body);
    let session;
    for (;;) {
      await sleep(1000);
      if (performance.now() >= deadline) throw new Stop("waited");
      const polled = await api("GET", PATH);
      if (polled.status === 404 || (polled.status === 200 && polled.body.offer_key !== current.body.offer_key)) {
        throw new Stop("ended");
      }
      if (polled.status !== 200) throw refusal(polled);
      if (polled.body.state === "sealed") {
        session = polled.body;
        break;
      }
    }
    const sealed = fromBase64url(session.sealed);
    let secret;
    try {
      const key = await sealingKey(code, pair.privateKey, offerKey, "decrypt");
      secret = new Uint8Array(await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: sealed.slice(0, 12), additionalData: concat(offerKey, pair.raw) }, key,
        sealed.slice(12)));
    } catch (error) {
      throw new Stop("unopened");
    }
    const check = toBase64url(await walletCheck(secret));
    if (secret.length !== 16 || check !== wallet.body.wallet_check) throw new Stop("wrong-wallet");
    try {
      await saveSecret(database, account, toBase64url(secret), check);
    } catch (error) {
      throw new Stop("storage");
    }
    await api("POST", `${PATH}/done`).catch(() => {}); // the session expires by itself if this is lost
    // Rebuild this device's credentials from the kept replies now, not on the next page: the worker may go
    // straight to a petition to sign. A failure here is retried by the loader on every page.
    await syncLocked(database, account, meta("csrf-token") || "").catch(() => {});
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearError();
    submit.disabled = true;
    link().then(() => {
      receiving.hidden = true;
      form.hidden = true;
      received.hidden = false;
      received.focus();
    }, (error) => {
      receiving.hidden = true;
      submit.disabled = false;
      showError(error, input.getAttribute("aria-invalid") === "true" ? input : null);
    });
  });
  (prefill ? submit : input).focus();
}

// Start ----------------------------------------------------------------------------------------------------

async function main() {
  if (!page) return;
  page.hidden = false;
  // The code in the address (from the QR code) is read once and taken out of the address and the history.
  const fragment = location.hash.slice(1);
  if (fragment) history.replaceState(null, "", location.pathname + location.search);
  const account = meta("undersigned-account");
  if (!window.indexedDB || !window.crypto || !crypto.subtle || !account) {
    panel("unavailable");
    return;
  }
  let database;
  let record;
  try {
    database = await openStore();
    // A secret here that is not the account's wallet (another device's won the race, or the server could not
    // be reached when it was made) is set aside, never used: this device then takes the wallet by a code.
    const wallet = await api("GET", "/api/v1/wallet").catch(() => null);
    record = await heldSecret(database, account, wallet && wallet.status === 200 ? wallet.body.wallet_check : undefined);
  } catch (error) {
    panel("unavailable");
    return;
  }
  if (record) {
    showCode(database, account, record);
    if (fragment) showError(new Stop("already-here"));
  } else {
    let prefill = "";
    try {
      prefill = fragment ? display(normalise(decodeURIComponent(fragment))) : "";
    } catch (error) {
      prefill = fragment.slice(0, 20); // shown as it came: the worker sees what is wrong with it
    }
    takeCode(database, account, prefill);
  }
}

main();
