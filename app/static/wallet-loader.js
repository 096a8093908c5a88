// Pages without a sign panel do not carry the anonymous wallet (wallet.js, about 54 KB). This asks whether the
// account has anything to collect, and loads the wallet only then: every active account still fetches a token
// and a discussion credential for every open petition that takes anonymous signatures, so the record of who
// was issued them says who was active, not who meant to sign or comment what (docs/architecture.md). The
// wallet is loaded too when this browser holds the wallet's secret and misses a credential issued to the account
// (the server keeps each reply, and the secret rebuilds the request), or kept a blinded request whose reply it
// never received. html[data-wallet-ready] says when there is nothing to wait for
// (anonymous-comments.js reads the discussion credential after that).
(function () {
  "use strict";
  var root = document.documentElement;
  if (!window.fetch || !window.indexedDB) { return; }

  function load() {
    var script = document.createElement("script");
    script.src = "/static/wallet.js";
    document.head.appendChild(script);
  }

  // What this browser keeps for this account (null when its storage cannot be read).
  function kept(account, done) {
    var request;
    try { request = indexedDB.open("undersigned-wallet", 1); } catch (error) { done(null); return; }
    request.onupgradeneeded = function () { request.result.createObjectStore("tokens", { keyPath: "id" }); };
    request.onerror = function () { done(null); };
    request.onsuccess = function () {
      var all = request.result.transaction("tokens").objectStore("tokens").getAll();
      all.onsuccess = function () {
        done(all.result.filter(function (item) { return item.account === account; }));
      };
      all.onerror = function () { done(null); };
    };
  }

  // The wallet has work here when something is due and this browser holds the wallet (or the account has none
  // yet: this browser starts it); when this browser holds the wallet and misses a credential issued to it (kept
  // reply: it was collected on another device, or the reply was lost); or when an older wallet kept a blinded
  // request whose reply it never received.
  function hasWork(wallet, records) {
    var secret = records.some(function (item) { return item.kind === "secret"; });
    if (records.some(function (item) { return item.status === "blinded"; })) { return true; }
    if (wallet.due && wallet.due.length && (secret || !wallet.wallet_check)) { return true; }
    if (!secret) { return false; }
    var ids = {};
    records.forEach(function (item) { ids[item.id] = true; });
    return (wallet.issued || []).some(function (item) {
      var purpose = item.purpose || "sign";
      if (purpose === "ballot") { return !ids[account + ":ballot:" + item.ballot_id]; }
      return !ids[account + ":" + item.petition_id + (purpose === "sign" ? "" : ":" + purpose)];
    });
  }

  var account = (document.querySelector('meta[name="undersigned-account"]') || {}).content;
  // Every purpose the wallet derives (assets/src/sync.js's WALLET_PATH): a poll's credential is collected on any
  // page, like the others, so collecting it says nothing of who meant to answer.
  fetch("/api/v1/wallet?purposes=sign,discuss,ballot,signer", { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
    .then(function (response) {
      // Read even when refused: a response left unread keeps its request open in some browsers.
      return response.json().catch(function () { return null; }).then(function (body) {
        return response.ok ? body : null;
      });
    })
    .then(function (wallet) {
      if (!wallet) { root.setAttribute("data-wallet-ready", "true"); return; }
      kept(account, function (records) {
        if (records && hasWork(wallet, records)) { load(); } else { root.setAttribute("data-wallet-ready", "true"); }
      });
    })
    .catch(function () { root.setAttribute("data-wallet-ready", "error"); /* the next page asks again */ });
})();
