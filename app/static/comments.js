// Live discussion: new comments appear without a reload. Without this script the page works the same,
// and a reload shows them. (Anonymous comments, for those who can post them: anonymous-comments.js.)
(function () {
  "use strict";
  var list = document.querySelector("[data-live-comments]");
  var status = document.getElementById("comments-live");
  if (!list || !status || !window.fetch) { return; }
  var INTERVAL = Number(list.getAttribute("data-interval")) || 15000;
  var unseen = 0;

  function poll() {
    if (document.hidden) { window.setTimeout(poll, INTERVAL); return; }
    var url = list.getAttribute("data-live-url") + "?after=" + encodeURIComponent(list.getAttribute("data-after"));
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok) { return null; }
        var count = Number(response.headers.get("X-New-Comments") || "0");
        var latest = response.headers.get("X-Latest-Comment");
        return response.text().then(function (html) { return { count: count, latest: latest, html: html }; });
      })
      .then(function (update) {
        if (!update || update.count === 0) { return; }
        list.setAttribute("data-after", update.latest);
        if (list.getAttribute("data-sort") === "newest" && update.html.trim()) {
          // Server-rendered and sanitized, like the rest of the list. Only new top-level comments come in;
          // new replies are counted, and shown under their comment on the next load.
          // They go below the author's own comments still waiting for their batch (anonymous-comments.js
          // shows those on top), which are not counted.
          var waiting = list.querySelectorAll(":scope > li.comment-pending");
          var before = list.children.length;
          if (waiting.length) {
            waiting[waiting.length - 1].insertAdjacentHTML("afterend", update.html);
          } else {
            list.insertAdjacentHTML("afterbegin", update.html);
          }
          var added = list.children.length - before;
          var replies = update.count - added;
          status.textContent = added + (added === 1 ? " new comment" : " new comments") + " added" +
            (replies > 0 ? ", and " + replies + (replies === 1 ? " new reply" : " new replies") +
             ": reload to see " + (replies === 1 ? "it" : "them") : "") + ".";
          document.dispatchEvent(new CustomEvent("undersigned:comments-added"));
        } else {
          unseen += update.count;
          var link = document.createElement("a");
          link.href = list.getAttribute("data-live-url").replace(/\/new$/, "?sort=newest");
          link.textContent = unseen + (unseen === 1 ? " new comment" : " new comments") + ": show the newest";
          status.replaceChildren(link);
        }
      })
      .catch(function () { /* offline for a moment: try again at the next interval */ })
      .then(function () { window.setTimeout(poll, INTERVAL); });
  }
  window.setTimeout(poll, INTERVAL);
})();
