// Pages without a sign panel do not carry the anonymous wallet (wallet.js, about 47 KB). This asks whether the
// account has anything to collect, and loads the wallet only then: every active account still fetches a token
// and a discussion credential for every open petition that takes anonymous signatures, so the record of who
// was issued them says who was active, not who meant to sign or comment what (docs/architecture.md). The
// wallet is loaded too when this browser kept a blinded request whose reply it never received: the server
// keeps the reply, and the wallet collects it. html[data-wallet-ready] says when there is nothing to wait for
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

  // Does this browser hold a blinded request for this account (a reply it missed)?
  function missedReply(account, done) {
    var request;
    try { request = indexedDB.open("undersigned-wallet", 1); } catch (error) { done(false); return; }
    request.onupgradeneeded = function () { request.result.createObjectStore("tokens", { keyPath: "id" }); };
    request.onerror = function () { done(false); };
    request.onsuccess = function () {
      var all = request.result.transaction("tokens").objectStore("tokens").getAll();
      all.onsuccess = function () {
        done(all.result.some(function (item) { return item.account === account && item.status === "blinded"; }));
      };
      all.onerror = function () { done(false); };
    };
  }

  var account = (document.querySelector('meta[name="undersigned-account"]') || {}).content;
  fetch("/api/v1/wallet", { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
    .then(function (response) {
      // Read even when refused: a response left unread keeps its request open in some browsers.
      return response.json().catch(function () { return null; }).then(function (body) {
        return response.ok ? body : null;
      });
    })
    .then(function (wallet) {
      if (wallet && wallet.due && wallet.due.length) { load(); return; }
      if (!wallet || !wallet.issued || !wallet.issued.length) {
        root.setAttribute("data-wallet-ready", "true");
        return;
      }
      missedReply(account, function (missed) {
        if (missed) { load(); } else { root.setAttribute("data-wallet-ready", "true"); }
      });
    })
    .catch(function () { root.setAttribute("data-wallet-ready", "error"); /* the next page asks again */ });
})();
