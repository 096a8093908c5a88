// Live tally: an open petition's count and progress follow new signatures without a reload. Without this
// script the page shows the count as it was when loaded, and a reload shows the new one.
(function () {
  "use strict";
  var tally = document.querySelector("[data-live-tally]");
  if (!tally || !window.fetch) { return; }
  var count = tally.querySelector(".tally-count");
  var progress = tally.querySelector("progress");
  var remaining = tally.querySelector("[data-tally-remaining]");
  var INTERVAL = Number(tally.getAttribute("data-interval")) || 15000;
  var shown = Number(tally.getAttribute("data-signatures"));

  // Grouped the way the page's language groups them (the server writes the first count the same way).
  var LANG = document.documentElement.lang || "en";
  function number(value) { return value.toLocaleString(LANG); }

  function show(signatures) {
    var strong = document.createElement("strong");
    strong.textContent = number(signatures);
    count.replaceChildren(strong, document.createTextNode(signatures === 1 ? " signature" : " signatures"));
    if (progress) {
      progress.value = Math.min(signatures, progress.max);
      progress.textContent = signatures + " of " + progress.max;
    }
    // Past the threshold the page names the next one on its next load; until then it says none are missing.
    if (remaining) { remaining.textContent = number(Math.max(0, (progress ? progress.max : 0) - signatures)); }
    shown = signatures;
  }

  // The discussion on the page, if any: the same poll asks how many comments arrived since its newest, and
  // comments.js offers them (one request for both; at the shorter of the two intervals).
  var discussion = document.querySelector("[data-live-comments]");
  if (discussion) {
    INTERVAL = Math.min(INTERVAL, Number(discussion.getAttribute("data-interval")) || INTERVAL);
  }
  function url() {
    var base = tally.getAttribute("data-tally-url");
    return discussion ? base + "?after=" + encodeURIComponent(discussion.getAttribute("data-after")) : base;
  }
  function tell(name, detail) { document.dispatchEvent(new CustomEvent(name, { detail: detail })); }

  // The server tags each answer with the petition's version (ETag) and answers 304, without reading anything,
  // while it has not changed: most polls cost it almost nothing.
  var etag = null;

  function poll() {
    if (document.hidden) { window.setTimeout(poll, INTERVAL); return; }
    var headers = { "Accept": "application/json" };
    if (etag) { headers["If-None-Match"] = etag; }
    fetch(url(), { credentials: "same-origin", cache: "no-store", headers: headers })
      .then(function (response) {
        if (response.status === 304) { return { signature_count: shown, state: "open" }; }
        if (response.ok) {
          etag = response.headers.get("ETag");
          return response.json().then(function (petition) {
            tell("undersigned:live", petition);
            return petition;
          });
        }
        // Gone or hidden since the page was loaded: nothing more to follow. A server error: try again later.
        if (response.status < 500) { return null; }
        throw new Error(response.statusText);
      })
      .then(function (petition) {
        if (petition && petition.signature_count !== shown) { show(petition.signature_count); }
        if (petition && petition.state === "open") {
          window.setTimeout(poll, INTERVAL);
        } else {
          tell("undersigned:live-ended", null);  // comments.js polls on its own from here
        }
      })
      .catch(function () { window.setTimeout(poll, INTERVAL); });  // offline for a moment: try again later
  }
  // Said before comments.js runs (the page loads this script first): the discussion's count comes from here.
  tally.setAttribute("data-polling", "");
  window.setTimeout(poll, INTERVAL);
})();
