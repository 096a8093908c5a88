// Answering a poll from the browser wallet (issue #25), on /polls/{id}: the page's answer form
// (form[data-ballot-form], templates/ballots/) works only with the poll's anonymous credential, which only the
// wallet can make, so the page shows it once this script has one to send, and otherwise says why not.
//
// - A members' poll: its credential is in the wallet's bundle (sync.js collects everything due, as on every page).
// - A signers' poll: the wallet exchanges its signer credential for the petition (signer.js) for the poll's
//   credential, without cookies (POST /api/v1/ballots/{id}/exchange); the reply is blind, so nobody can tie the
//   two. The poll's key is checked first (keycheck.js's requireBallotKey).
//   With batching on, the server writes the exchange with its next batch and answers 202 (when to come back): the
//   device keeps the pending exchange (the request, its blinded form and the blinding inverse) and the chosen answer
//   in its storage, says so, and completes both (the same request again, then the answer) once the batch is past,
//   while the page stays open or at the next visit to the poll's page.
// The answer is sent without cookies (POST /api/v1/ballots/{id}/answers) and waits for the next batch; a later
// answer with the same credential replaces it, so this device keeps the last choice it sent, to show it and to let
// the worker change it until the poll closes.
// Built into app/static/ballot.js by `make assets`; the page loads it in place of the wallet loader.
import { credential } from "./derive.js";
import { KeyRefused, requireKeys } from "./keycheck.js";
import { fromKeptReply } from "./signer.js";
import { fromBase64url, getRecord, getSecret, openStore, putRecord, toBase64url } from "./store.js";
import { BALLOT, SIGNER, importKey, keepCredential, suite, syncLocked, tokenId } from "./sync.js";

const WALLET = ["Your wallet", "/wallet"];
const LINK = ["link this device", "/wallet/link"];

function meta(name) {
  const element = document.querySelector(`meta[name="${name}"]`);
  return element ? element.getAttribute("content") : null;
}

// The server's words for a refusal, never its JSON: the message, then what it says of each field.
function refusal(body, status) {
  const error = body && body.error;
  if (!error) return `The server could not take your answer (error ${status}). Try again in a moment.`;
  const fields = Object.values(error.fields || {}).filter((text) => typeof text === "string" && text !== error.message);
  return [error.message, ...fields].filter(Boolean).join(" ");
}

async function send(path, payload) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST", credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer",
      headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(payload),
    });
  } catch (error) {
    return { status: 0, body: null, words: "The server could not be reached: nothing was sent. Check your connection and try again." };
  }
  const body = await response.json().catch(() => null);
  return { status: response.status, body, words: response.ok ? "" : refusal(body, response.status) };
}

class Stop extends Error {}

// The exchange waits for the server's next batch (202): the pending record is kept; come back after `seconds`.
class Waiting extends Error {
  constructor(record) {
    super("waiting");
    this.record = record;
  }
}

// "in about 5 minutes", from a moment in milliseconds.
function inAbout(moment) {
  const minutes = Math.max(1, Math.round((moment - Date.now()) / 60000));
  return minutes === 1 ? "in about a minute" : `in about ${minutes} minutes`;
}

function say(line, parts, { focus = false } = {}) {
  line.replaceChildren(...parts.map((part) => {
    if (typeof part === "string") return document.createTextNode(part);
    const link = document.createElement("a");
    [link.textContent, link.href] = part;
    return link;
  }));
  line.hidden = false;
  if (focus) line.focus();
}

const labelOf = (option) => (typeof option === "string" ? option : option.label);

// The positions chosen in the form, in rank order for a ranked poll (one select per rank, "" for none).
function chosen(form, kind) {
  const controls = Array.from(form.querySelectorAll('[name="choice"]'));
  if (kind === "ranked") return controls.map((control) => control.value).filter((value) => value !== "").map(Number);
  return controls.filter((control) => control.checked).map((control) => Number(control.value));
}

// The group the answer counts under for the breakdown at close (a poll put to several groups): null for none.
function chosenGroup(form) {
  const picked = form.querySelector('[name="group"]:checked');
  return picked && picked.value !== "" ? Number(picked.value) : null;
}

function showGroup(form, group) {
  for (const control of form.querySelectorAll('[name="group"]')) {
    control.checked = control.value === (group == null ? "" : String(group));
  }
}

function show(form, kind, choice) {
  const controls = Array.from(form.querySelectorAll('[name="choice"]'));
  if (kind === "ranked") {
    controls.forEach((control, rank) => { control.value = rank < choice.length ? String(choice[rank]) : ""; });
    return;
  }
  for (const control of controls) control.checked = choice.includes(Number(control.value));
}

// What the server would refuse anyway, said before anything is sent.
function problem(choice, kind, maxChoices, options) {
  if (!choice.length) return kind === "ranked" ? "Rank at least one option first." : "Choose an option first.";
  if (choice.length > maxChoices) return `Choose at most ${maxChoices} options.`;
  if (choice.some((position) => !Number.isInteger(position) || position < 0 || position >= options.length)) {
    return "One of your choices is not an option of this poll. Reload the page and choose again.";
  }
  const twice = choice.find((position, index) => choice.indexOf(position) !== index);
  if (twice !== undefined) return `Each option takes one rank only: "${labelOf(options[twice])}" is ranked twice.`;
  return null;
}

function readable(choice, kind, options) {
  const labels = choice.map((position) => `"${labelOf(options[position])}"`);
  return kind === "ranked" ? labels.map((label, rank) => `${rank + 1}. ${label}`).join(", ") : labels.join(", ");
}

// A signers' poll's credential: exchanged for this wallet's signer credential, at the first answer. `pending` is an
// exchange the server took for its batch earlier (its request is sent again as it was); `answer` is kept with it.
async function exchanged(database, account, ballot, answer, pending = null) {
  const petitionId = ballot.petition_id;
  let signer = await getRecord(database, tokenId(account, petitionId, SIGNER));
  if (!signer || signer.status !== "held") signer = await fromKeptReply(database, account, petitionId, ballot.signer_key);
  if (!signer || signer.status !== "held") {
    throw new Stop("This poll is for the petition's signers, and this device holds no proof that you signed it. "
                   + "If you signed on another device, answer there, or link this device to your wallet first. "
                   + "A signature made before polls existed carries no such proof.");
  }
  const item = { purpose: BALLOT, ballot_id: ballot.id, petition_id: petitionId, key_id: ballot.key.key_id,
                 spki: ballot.key.spki };
  await requireKeys(database, [item]);
  const publicKey = await importKey(item.spki, item.key_id);
  let made;
  if (pending && pending.keyId === item.key_id) {
    made = { message: fromBase64url(pending.message), blindedMsg: fromBase64url(pending.blinded),
             inv: fromBase64url(pending.inv) };
  } else {
    const secretRecord = await getSecret(database, account);
    if (!secretRecord) throw new Stop("This device does not hold your wallet any more, so it cannot make this poll's credential.");
    made = await credential(fromBase64url(secretRecord.secret), BALLOT, ballot.id, item.key_id,
                            fromBase64url(item.spki));
  }
  const reply = await send(`/api/v1/ballots/${ballot.id}/exchange`, {
    message: signer.message, signature: signer.signature, blinded: toBase64url(made.blindedMsg),
  });
  if (reply.status === 202) {
    // Each time it still waits (fewer than k exchanges and answers came meanwhile), the device waits twice as long,
    // up to twelve batches: a few requests an hour at most, well under the server's limit per credential.
    const seconds = Number(reply.body && reply.body.come_back_in_seconds) || 300;
    const tries = pending && pending.status === "pending" ? (pending.tries || 0) + 1 : 0;
    const record = { id: tokenId(account, ballot.id, BALLOT), account, petitionId, ballotId: ballot.id, purpose: BALLOT,
                     keyId: item.key_id, status: "pending", message: toBase64url(made.message),
                     blinded: toBase64url(made.blindedMsg), inv: toBase64url(made.inv), answer,
                     tries, comeBackAt: comeBackAt(seconds, tries, ballot.closes_at) };
    await putRecord(database, record);
    throw new Waiting(record);
  }
  if (reply.status !== 200 && reply.status !== 201) {
    if (pending) await putRecord(database, { ...pending, status: "refused" });
    throw new Stop(reply.words);
  }
  let signature;
  try {
    signature = await suite.finalize(publicKey, made.message, fromBase64url(reply.body.blind_signature), made.inv);
  } catch (error) {
    throw new Stop("The server's reply does not make a valid credential for this poll: nothing was sent. Tell the organizers.");
  }
  return keepCredential(database, account, item, made.message, signature);
}

// When to send a waiting exchange again: after the next batch, twice as late each time it still waits (up to twelve
// batches), but within the close's last batches, when the server lets every waiting exchange out, so that the answer
// still reaches the poll before it closes.
function comeBackAt(seconds, tries, closesAt) {
  const now = Date.now();
  let target = now + seconds * 1000 * Math.min(2 ** tries, 12) + 1000;
  const closes = Date.parse(closesAt);
  const latest = closes - 1.5 * seconds * 1000;
  if (Number.isFinite(latest) && target > latest) target = Math.max(latest, now + seconds * 1000 + 1000);
  return target;
}

// When a pending exchange already due is sent at a visit: a random moment half a minute to two minutes after the
// page's signed-in load, but before the close's last minute.
function afterTheVisit(closesAt) {
  const now = Date.now();
  const random = crypto.getRandomValues(new Uint32Array(1))[0] / 2 ** 32;
  let target = now + (30 + 90 * random) * 1000;
  const latest = Date.parse(closesAt) - 60000;
  if (Number.isFinite(latest) && target > latest) target = Math.max(now + 5000, latest);
  return target;
}

// What the worker is told while a due exchange waits for its moment after the visit.
function visitWords(record, kind, options) {
  return `Your answer ${readable(record.answer.choice, kind, options)} is kept on this device: the server's batch is `
         + `past, and this page sends it ${inAbout(record.comeBackAt)} if it stays open, not at once, so that it `
         + "does not follow this page's signed-in loading and say who you are. You can still change your choice.";
}

// What the worker is told while the exchange waits for the batch.
function waitingWords(record, kind, options) {
  return `Your answer ${readable(record.answer.choice, kind, options)} is kept on this device and not sent yet: `
         + "so that the moment you clicked does not say who you are, your credential for this poll is made with "
         + `the server's next batch (${inAbout(record.comeBackAt)}). This page sends your answer then if it stays `
         + "open; otherwise come back to this poll's page after that and it is sent. You can still change your choice.";
}

async function readBallot(ballotId) {
  try {
    const response = await fetch(`/api/v1/ballots/${ballotId}`, { credentials: "omit", cache: "no-store",
                                                                 headers: { Accept: "application/json" } });
    return response.ok ? await response.json() : null;
  } catch (error) {
    return null;
  }
}

// Why this device has no credential for a members' poll, from what the wallet found.
function noCredential(outcome) {
  if (outcome.refused) return [outcome.refused];
  if (outcome.wallet === "elsewhere") {
    return ["Your wallet is on another device, so this one cannot answer yet. Answer there, or ", LINK,
            " to a device that has it, or enter your recovery code on ", WALLET, "."];
  }
  if (outcome.wallet === "refused" || outcome.wallet === "none") {
    return [`This device could not collect your credential for this poll. ${outcome.message || ""} See `, WALLET, "."];
  }
  return ["Your wallet holds no credential for this poll: only confirmed members of the organization may answer it. ",
          "If you are one, confirm your address and reload this page."];
}

async function answerForm(form, line, database, account, csrf) {
  const ballotId = Number(form.getAttribute("data-ballot-id"));
  const audience = form.getAttribute("data-audience");
  const kind = form.getAttribute("data-kind");
  const batchSeconds = Number(form.getAttribute("data-batch-seconds") || "3600");
  const ballot = await readBallot(ballotId);
  if (!ballot) throw new Stop("This poll could not be read from the server. Reload to try again.");
  if (ballot.state !== "open") throw new Stop("This poll is not open for answers.");
  const options = ballot.options || [];
  const maxChoices = Number(ballot.max_choices || form.getAttribute("data-max-choices") || 1);

  let outcome;
  try {
    outcome = await syncLocked(database, account, csrf);
  } catch (error) {
    if (!(error instanceof KeyRefused)) throw error;
    outcome = { wallet: "refused", message: error.message };
  }
  const id = tokenId(account, ballotId, BALLOT);
  let held = await getRecord(database, id);
  if (audience !== "signers" && !(held && held.status === "held")) {
    say(line, noCredential(outcome));
    return;
  }
  if (audience === "signers" && !(held && held.status === "held")) {
    // The signer credential may still come from the server's kept reply (at the first answer); not when this device
    // holds no wallet, nor when a key it needs was refused.
    const signer = await getRecord(database, tokenId(account, ballot.petition_id, SIGNER));
    if (outcome.wallet !== "here" || (outcome.refused && !(signer && signer.status === "held"))) {
      say(line, noCredential(outcome));
      return;
    }
  }

  const button = form.querySelector('button[type="submit"], button:not([type])');
  const answered = (record) => {
    if (button) button.textContent = "Change my answer";
    return `You answered ${readable(record.answer.choice, kind, options)} from this device. You can change your `
           + "answer until the poll closes; only your last answer counts.";
  };
  const pendingNow = () => (held && held.status === "pending" ? held : null);
  if (held && held.answer && held.status === "held") {
    show(form, kind, held.answer.choice);
    showGroup(form, held.answer.group);
    say(line, [answered(held)]);
  }
  form.hidden = false;
  for (const note of document.querySelectorAll("[data-ballot-needs-js]")) note.hidden = true;

  let busy = false;
  let timer = null;
  // Send an answer: exchange first when this device holds no credential yet (or completes a pending exchange).
  const submit = async (choice, group, { focus = true } = {}) => {
    busy = true;
    if (button) button.disabled = true;
    say(line, [pendingNow() ? "Completing your answer without your name…" : "Sending your answer without your name…"]);
    try {
      if (!(held && held.status === "held")) {
        try {
          held = await exchanged(database, account, ballot, { choice, group }, pendingNow());
        } catch (error) {
          if (!(error instanceof Waiting)) throw error;
          held = error.record;
          say(line, [waitingWords(held, kind, options)], { focus });
          schedule();
          return;
        }
      }
      const sent = await send(`/api/v1/ballots/${ballotId}/answers`,
                              { message: held.message, signature: held.signature, choice, group });
      if (sent.status !== 202) throw new Stop(sent.words);
      const changed = Boolean(held.answer);
      held = { ...held, answer: { choice, group } };
      await putRecord(database, held);
      const batch = Number(sent.body && sent.body.counted_at_batch);
      // True for both kinds of poll: a batch goes out once enough answers wait to hide each among them; a smaller
      // group waits for the site's longest delay (results kept until the close) or for the close itself (results
      // shown live, where a small batch would show its few choices).
      const when = (Number.isFinite(batch) ? batch : batchSeconds) <= 0 ? "it is counted now"
        : ballot.results_live
          ? "it is counted once enough colleagues have answered to hide it among, or at the close (the results "
            + "show live, so a smaller batch would show your choice)"
          : "it is counted at the next batch if enough colleagues answer meanwhile, otherwise after the site's "
            + "longest wait or at the close";
      say(line, [`${changed ? "Your new answer is in" : "Your answer is in"}; ${when}. `
                 + `You chose ${readable(choice, kind, options)}. You can change it until the poll closes; only `
                 + "your last answer counts."], { focus });
      if (button) button.textContent = "Change my answer";
    } catch (error) {
      if (!(error instanceof Stop || error instanceof KeyRefused)) {
        say(line, ["Your answer could not be sent: something went wrong in this browser. Reload and try again."], { focus });
        throw error;
      }
      if (held && held.status !== "held") held = await getRecord(database, tokenId(account, ballotId, BALLOT));
      say(line, [error.message], { focus });
    } finally {
      busy = false;
      if (button) button.disabled = false;
    }
  };
  // A pending exchange is completed once the batch is past, while the page stays open.
  function schedule() {
    const pending = pendingNow();
    if (timer !== null || !pending) return;
    timer = setTimeout(() => {
      timer = null;
      const still = pendingNow();
      if (!still) return;
      if (busy) {
        schedule();
        return;
      }
      submit(still.answer.choice, still.answer.group, { focus: false }).catch(() => {});
    }, Math.max(0, pending.comeBackAt - Date.now()) + 1000);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    const choice = chosen(form, kind);
    const group = chosenGroup(form);
    const wrong = problem(choice, kind, maxChoices, options);
    if (wrong) {
      say(line, [wrong], { focus: true });
      return;
    }
    const pending = pendingNow();
    if (pending && pending.comeBackAt > Date.now()) {
      // Before the batch: the new choice is kept with the pending exchange, sent once the credential is ready.
      held = { ...pending, answer: { choice, group } };
      await putRecord(database, held);
      say(line, [waitingWords(held, kind, options)], { focus: true });
      schedule();
      return;
    }
    await submit(choice, group);
  });

  const pending = pendingNow();
  if (pending && pending.answer) {
    show(form, kind, pending.answer.choice);
    showGroup(form, pending.answer.group);
    if (pending.comeBackAt > Date.now()) {
      say(line, [waitingWords(pending, kind, options)]);
    } else {
      // Not with the page's load: the page (and the wallet's bundle) came signed in a moment ago, and an anonymous
      // exchange and answer right after would say whose they are. A random while later, if the page stays open.
      held = { ...pending, comeBackAt: afterTheVisit(ballot.closes_at) };
      say(line, [visitWords(held, kind, options)]);
    }
    schedule();
  }
}

async function main() {
  const form = document.querySelector("form[data-ballot-form]");
  const line = document.querySelector("[data-ballot-status]");
  if (!form || !line) return;
  const account = meta("undersigned-account");
  const csrf = meta("csrf-token");
  if (!account || !csrf) {
    say(line, ["Sign in to answer this poll: your answer is still sent without your name."]);
    return;
  }
  if (!window.indexedDB || !window.crypto || !crypto.subtle) {
    say(line, ["This browser cannot keep a wallet (its storage is blocked or turned off, as in some private windows), ",
               "so it cannot answer this poll. Answer from a device that holds your wallet (", WALLET, ")."]);
    return;
  }
  let database;
  try {
    database = await openStore();
  } catch (error) {
    say(line, ["This browser's storage for your wallet is blocked, so it cannot answer this poll. Allow this site's ",
               "storage and reload, or answer from a device that holds your wallet (", WALLET, ")."]);
    return;
  }
  try {
    await answerForm(form, line, database, account, csrf);
  } catch (error) {
    if (error instanceof Stop || error instanceof KeyRefused) say(line, [error.message]);
    else {
      say(line, ["This device could not prepare your answer. Reload to try again."]);
      throw error;
    }
  }
}

main()
  .then(() => document.documentElement.setAttribute("data-ballot-ready", "true"))
  .catch(() => document.documentElement.setAttribute("data-ballot-ready", "error"));
