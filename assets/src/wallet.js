// The anonymous wallet on the sign panel (RFC 9474 blind signatures, via @cloudflare/blindrsa-ts).
//
// On every page that carries it, it collects what is due (sync.js: every credential derives from the account's
// one wallet secret, so any device holding the secret rebuilds the rest). On a petition's sign panel it says
// which way this device can sign and why, offers "Nobody: sign anonymously" when this device holds the token
// (sent without cookies), and spends the token when signing with a name, so nobody can sign both ways. The
// discussion credential is never spent: app/static/anonymous-comments.js reads it to post, edit and delete
// anonymous comments without cookies.
// Built into app/static/wallet.js by `make assets`.
import { getRecord, openStore, putRecord } from "./store.js";
import { KeyRefused } from "./keycheck.js";
import { fromKeptReply, keepSigner, signerRequest } from "./signer.js";
import { SIGNER, syncLocked, tokenId } from "./sync.js";

function meta(name) {
  const element = document.querySelector(`meta[name="${name}"]`);
  return element ? element.getAttribute("content") : null;
}

const getToken = (database, account, petitionId) => getRecord(database, tokenId(account, petitionId));
const saveToken = putRecord;

// Without cookies: nothing in the request says who sends it. `signer` (signer.js), when the petition has a
// signers' key, asks in the same request for the signer credential that lets this wallet answer the signers'
// polls: blind, so it cannot be tied to this signature.
async function submitAnonymously(token, signer = null) {
  const payload = { petition_id: token.petitionId, message: token.message, signature: token.signature };
  if (signer) payload.signer_blinded = signer.blinded;
  const response = await fetch("/api/v1/anonymous/signatures", {
    method: "POST", credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(payload),
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

// The status line: which way this device can sign, and why. `parts` are text, or [text, href] for a link.
function sayHow(parts) {
  const line = document.querySelector("[data-wallet-status]");
  if (!line) return;
  line.replaceChildren(...parts.map((part) => {
    if (typeof part === "string") return document.createTextNode(part);
    const link = document.createElement("a");
    link.textContent = part[0];
    link.href = part[1];
    return link;
  }));
  line.hidden = false;
}

const LINK = ["link this device", "/wallet/link"];
const WALLET = ["Your wallet", "/wallet"];

function sayByName(form, reason) {
  const forfeit = form.querySelector("input[name=forfeit]");
  const byName = forfeit
    ? " Or sign below with your name and give up signing this petition anonymously: tick \"I give up signing this petition anonymously\"."
    : " Or sign below with your name.";
  sayHow([...reason, byName]);
}

async function enhanceSignPanel(panel, database, account, outcome) {
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
  const here = outcome.wallet === "here";

  const showSigned = (text) => {
    status.textContent = text;
    form.hidden = true;
    const line = document.querySelector("[data-wallet-status]");
    if (line) line.hidden = true;
  };
  // The signer request for this petition (signer.js), and the words for a signers' key this browser refused.
  const signerFor = async () => {
    if (!here) return { signer: null, refused: "" };
    try {
      return { signer: await signerRequest(database, account, petitionId), refused: "" };
    } catch (error) {
      if (!(error instanceof KeyRefused)) throw error;
      return { signer: null, refused: ` ${error.message.replace("Nothing was sent.", "So this browser did not ask for the proof of signing that the signers' polls take.")}` };
    }
  };
  // Once the signature is published, the signer credential the server kept with it (when the batch wrote it):
  // asked for once here, and again by a signers' poll's page (ballot.js) if this finds none.
  const published = async (record) => {
    const kept = { id: record.id, account, petitionId: record.petitionId, keyId: record.keyId, status: "published",
                   signerAsked: Boolean(record.signerAsked) };
    if (here && !kept.signerAsked && !(await getRecord(database, tokenId(account, petitionId, SIGNER)))) {
      kept.signerAsked = true;
      await fromKeptReply(database, account, petitionId).catch(() => null);
    }
    // Counted: the message is no longer needed, and kept it would tie this browser to the published entry.
    await saveToken(database, kept);
  };
  const SPENT = "You signed anonymously, from this or another device; it is published and counted.";
  if (token && token.status === "published") {
    if (here && !token.signerAsked) await published(token);
    showSigned(SPENT);
    return;
  }
  if (token && token.status === "submitted") {
    if (await isPublished(token)) {
      await published(token);
      showSigned(SPENT);
      return;
    }
    // Not there yet: after a batch interval (and a margin), send it again; the server refuses a second copy.
    if (Date.now() - token.submittedAt > (waitSeconds + batchSeconds + 60) * 1000) {
      const again = await submitAnonymously(token, (await signerFor()).signer);
      if (again.ok) token.submittedAt = Date.now();
      await saveToken(database, token);
    }
    showSigned(`You signed anonymously: queued, it will appear within ${minutes(waitSeconds)}.`);
    return;
  }
  if (token && token.status === "held") {
    // Another device of this wallet may have spent it: the published entries say so to everyone alike.
    if (await isPublished(token)) {
      await published(token);
      panel.token = null;
      showSigned(SPENT);
      return;
    }
    if (choice) choice.hidden = false;
    sayHow([here ? "This device holds your wallet: sign anonymously (\"Nobody\" below), or with your name, which spends your token so nobody can sign both ways."
                 : "This browser holds your token for this petition: sign anonymously (\"Nobody\" below), or with your name, which spends it so nobody can sign both ways."]);
    panel.signAnonymously = async () => {
      // The signer credential needs this wallet's secret (a token of an older, random wallet signs without it).
      const { signer, refused: signerRefused } = await signerFor();
      const sent = await submitAnonymously(token, signer);
      if (sent.ok) {
        token.status = "submitted";
        token.submittedAt = Date.now();
        await saveToken(database, token);
        // Answered at once when the signature was written at once; else kept with the batch (published, above).
        if (signer && sent.body.signer_blind_signature) {
          await keepSigner(database, account, signer, sent.body.signer_blind_signature).catch(() => null);
        }
        showSigned(`You signed anonymously: queued, it will appear within ${minutes(waitSeconds)}.${signerRefused}`);
        status.focus();  // the form is gone: the confirmation takes focus, not the page body
      } else {
        status.textContent = (sent.body.error && sent.body.error.message) || "Your signature could not be sent.";
      }
    };
    return;
  }
  if (token && token.status === "elsewhere") {
    sayByName(form, ["Your token for this petition was collected before your wallet had a recovery code, by another browser or ",
                     "the command-line client: only that one can sign with it anonymously. Sign there."]);
    return;
  }
  if (outcome.wallet === "elsewhere") {
    sayByName(form, ["Your wallet is on another device, so this one cannot sign anonymously yet. To sign anonymously here, ",
                     LINK, " to a device that has it, or enter your recovery code on ", WALLET,
                     ". If no device has it any more, that page explains your choices."]);
    return;
  }
  if (outcome.wallet === "refused") {
    sayByName(form, [`${outcome.message} `]);
    return;
  }
  if (outcome.wallet === "none") {
    sayByName(form, [`This device could not start your wallet, so it cannot sign anonymously now. ${outcome.message || ""} `,
                     "Reload to try again, or see ", WALLET, "."]);
    return;
  }
  sayHow(["This device holds your wallet, but it has no anonymous-signing token for this petition, so you can sign with your name only. ",
          WALLET, " says what your wallet holds."]);
}

function sayNoStorage(panel) {
  if (!panel) return;
  sayByName(panel.form, ["This browser cannot keep a wallet: its storage (IndexedDB) is blocked or turned off here, as in some ",
                         "private windows. So it cannot sign anonymously. Sign anonymously from a device that holds your wallet (",
                         WALLET, "), or allow this site's storage and reload."]);
}

async function main() {
  const account = meta("undersigned-account");
  const csrf = meta("csrf-token");
  if (!account || !csrf) return;
  const panel = watchSignPanel();
  try {
    if (!window.indexedDB || !window.crypto || !crypto.subtle) {
      sayNoStorage(panel);
      document.documentElement.setAttribute("data-wallet-ready", "true");
      return;
    }
    let database;
    try {
      database = await openStore();
    } catch (error) {
      sayNoStorage(panel);
      document.documentElement.setAttribute("data-wallet-ready", "true");
      return;
    }
    let outcome;
    try {
      outcome = await syncLocked(database, account, csrf);
    } catch (error) {
      if (!(error instanceof KeyRefused)) {
        outcome = { wallet: "none", message: "" };
        if (panel) await enhanceSignPanel(panel, database, account, outcome);
        throw error;
      }
      outcome = { wallet: "refused", message: error.message }; // a key this browser will not trust: say why
    }
    if (panel) await enhanceSignPanel(panel, database, account, outcome);
    document.documentElement.setAttribute("data-wallet-ready", "true");
  } finally {
    if (panel) panel.settle(); // a waiting submission goes ahead, with the token if the wallet has one
  }
}

main().catch(() => {
  // The wallet is an enhancement: a failure leaves the page as it was, and the next page load tries again.
  document.documentElement.setAttribute("data-wallet-ready", "error");
});
