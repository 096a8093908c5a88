// The wallet page (/wallet, templates/wallet/index.html): what this device holds, the recovery code (shown only
// when asked), entering a recovery code, and the way to link a device. It collects like every wallet page
// (sync.js), so a device that was just given the secret rebuilds its credentials here at once.
// Built into app/static/wallet-page.js by `make assets`.
import { parseRecoveryCode, recoveryCode, RecoveryCodeError, walletCheck } from "./derive.js";
import { allRecords, fromBase64url, getSecret, openStore, saveSecret, toBase64url } from "./store.js";
import { KeyRefused } from "./keycheck.js";
import { readWallet, recollect, syncLocked } from "./sync.js";

const root = document.documentElement;
const account = (document.querySelector('meta[name="undersigned-account"]') || {}).content;
const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content;
const $ = (selector) => document.querySelector(selector);

const HELD = new Set(["held", "submitted", "published"]);

function say(element, text) {
  element.textContent = text;
  element.hidden = false;
}

async function describeDevice(database, outcome) {
  const device = $("[data-wallet-device]");
  const records = await allRecords(database, account);
  const held = records.filter((record) => HELD.has(record.status)).length;
  const recovery = $("[data-recovery-section]");
  if (outcome.wallet === "here") {
    say(device, held === 1 ? "This device holds your wallet, with 1 credential."
      : `This device holds your wallet, with ${held} credentials for petitions and polls.`);
    // Offered once the first credential exists: before that there is nothing a recovery code could bring back.
    const issued = outcome.state && outcome.state.issued ? outcome.state.issued.length : 0;
    recovery.hidden = !(held || issued);
    $("[data-recovery-later]").hidden = !recovery.hidden;
  } else if (outcome.wallet === "elsewhere") {
    say(device, "Your wallet is on another device: this one does not hold it. To use it here, link this device to one "
        + "that has it, or enter your recovery code below."
        + (outcome.setAside ? " This browser kept another wallet secret, one that is not your account's wallet (it was "
           + "made here while the server could not be reached, or your wallet was replaced since): it is set aside, "
           + "not deleted, and does not stop you linking this device or entering your recovery code." : "")
        + (held ? ` This browser still holds ${held} credential${held === 1 ? "" : "s"} it collected before.` : ""));
    recovery.hidden = true;
  } else {
    say(device, `This device could not start your wallet. ${outcome.message || ""} Reload to try again.`);
    recovery.hidden = true;
  }
  $("[data-elsewhere]").hidden = outcome.wallet !== "elsewhere";
}

function wireRecoveryCode(database) {
  const show = $("[data-show-recovery]");
  const shown = $("[data-recovery-shown]");
  const code = $("[data-recovery-code]");
  show.addEventListener("click", async () => {
    const record = await getSecret(database, account);
    if (!record) return;
    code.textContent = await recoveryCode(fromBase64url(record.secret));
    shown.hidden = false;
    show.hidden = true;
    code.focus();
  });
  $("[data-hide-recovery]").addEventListener("click", () => {
    code.textContent = "";
    shown.hidden = true;
    show.hidden = false;
    show.focus();
  });
  $("[data-copy-recovery]").addEventListener("click", async () => {
    const copied = $("[data-copied]");
    try {
      await navigator.clipboard.writeText(code.textContent);
      say(copied, "Copied. Paste it where you keep passwords, then clear your clipboard.");
    } catch (error) {
      say(copied, "This browser did not let the page copy: select the code and copy it yourself.");
    }
  });
  $("[data-print-recovery]").addEventListener("click", () => window.print());
}

function wireRecoveryForm(database, refresh) {
  const form = $("[data-recovery-form]");
  const input = form.querySelector("[data-recovery-input]");
  const error = $("[data-recovery-error]");
  const result = $("[data-recovery-result]");
  form.hidden = false;
  const refuse = (text) => {
    result.hidden = true;
    error.textContent = text;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    let secret;
    try {
      secret = await parseRecoveryCode(input.value);
    } catch (problem) {
      refuse(problem instanceof RecoveryCodeError ? problem.message : "That recovery code could not be read.");
      return;
    }
    const wallet = await readWallet();
    if (!wallet) {
      refuse("The server could not be asked about your wallet. Check your connection and try again.");
      return;
    }
    if (!wallet.wallet_check) {
      // No device of this account made this code: it is another account's (or another server's). Taking it would
      // tie the two accounts together, since one secret makes identical blinded requests for both.
      refuse("This account has no wallet yet, so this code belongs to another account's wallet (or another "
             + "server's), not yours. Nothing was changed. Check that you are signed in to your own account; if you "
             + "are, this device starts your wallet by itself when you open a petition.");
      return;
    }
    const check = toBase64url(await walletCheck(secret));
    if (wallet.wallet_check !== check) {
      refuse("This is not the recovery code of your wallet: it is a correct code, but of another wallet (another "
             + "account's, or one you replaced). Check that you are signed in to your own account, and use the code "
             + "shown on this page on a device that holds your wallet.");
      return;
    }
    await saveSecret(database, account, toBase64url(secret), check, { registered: true });
    let collected;
    let outcome;
    try {
      collected = await recollect(database, account, secret, wallet.issued || []);
      outcome = await syncLocked(database, account, csrf);
    } catch (problem) {
      if (!(problem instanceof KeyRefused)) throw problem;
      input.value = "";
      say(result, `This device now holds your wallet, but rebuilt nothing: ${problem.message}`);
      result.focus();
      return;
    }
    input.value = "";
    await refresh(outcome);
    say(result, collected === 1 ? "Done: this device now holds your wallet, and rebuilt 1 credential from it."
      : `Done: this device now holds your wallet, and rebuilt ${collected} credentials from it.`);
    result.focus();
  });
}

async function main() {
  if (!account || !csrf) return;
  if (!window.indexedDB || !window.crypto || !crypto.subtle) {
    say($("[data-wallet-device]"), "This browser cannot keep a wallet: its storage (IndexedDB) is blocked or turned "
        + "off here, as in some private windows. You can still sign with your name; to sign anonymously, use a device "
        + "that can keep your wallet.");
    root.setAttribute("data-wallet-ready", "true");
    return;
  }
  let database;
  try {
    database = await openStore();
  } catch (error) {
    say($("[data-wallet-device]"), "This browser cannot keep a wallet: its storage (IndexedDB) is blocked here, as "
        + "in some private windows. You can still sign with your name; to sign anonymously, use a device that can "
        + "keep your wallet, or allow this site's storage and reload.");
    root.setAttribute("data-wallet-ready", "true");
    return;
  }
  const refresh = (outcome) => describeDevice(database, outcome);
  const outcome = await syncLocked(database, account, csrf);
  await refresh(outcome);
  wireRecoveryCode(database);
  wireRecoveryForm(database, refresh);
  root.setAttribute("data-wallet-ready", "true");
}

main().catch((error) => {
  const device = $("[data-wallet-device]");
  if (device) {
    say(device, error instanceof KeyRefused ? error.message
      : "This device's wallet could not be read just now. Reload the page to try again.");
  }
  root.setAttribute("data-wallet-ready", "error");
});
