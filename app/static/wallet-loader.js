// Pages without a sign panel do not carry the anonymous-signing wallet (wallet.js, about 47 KB). This asks
// whether the account has tokens to collect, and loads the wallet only then: every active account still
// fetches a token for every open petition that takes anonymous signatures, so the record of who was issued
// tokens says who was active, not who meant to sign what (docs/architecture.md).
(function () {
  "use strict";
  if (!window.fetch || !window.indexedDB) { return; }
  fetch("/api/v1/wallet", { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (wallet) {
      if (!wallet || !wallet.due || !wallet.due.length) { return; }
      var script = document.createElement("script");
      script.src = "/static/wallet.js";
      document.head.appendChild(script);
    })
    .catch(function () { /* the next page asks again */ });
})();
