// Live discussion: new comments appear without a reload. Without this script the page works the same,
// and a reload shows them. (Anonymous comments, for those who can post them: anonymous-comments.js.)
(function () {
  "use strict";
  var list = document.querySelector("[data-live-comments]");
  var status = document.getElementById("comments-live");
  if (!list || !status || !window.fetch) { return; }
  var INTERVAL = Number(list.getAttribute("data-interval")) || 15000;
  var unseen = 0;
  // The discussion's version (ETag) as of the last answer: while it holds, the server answers 304 without
  // reading anything, and there is nothing new.
  var etag = null;

  function poll() {
    if (document.hidden) { window.setTimeout(poll, INTERVAL); return; }
    var url = list.getAttribute("data-live-url") + "?after=" + encodeURIComponent(list.getAttribute("data-after"));
    var headers = { "Accept": "text/html" };
    if (etag) { headers["If-None-Match"] = etag; }
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: headers })
      .then(function (response) {
        if (!response.ok) { return null; }  // 304 included: nothing new
        etag = response.headers.get("ETag");
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

// Endorsing and posting a comment with one's name, in place: the same as the forms do without this script
// (which keeps working), through the JSON API, then the page is updated and the change announced. Anonymous
// comments are anonymous-comments.js's: a form whose "Post anonymously" box is ticked is left to it.
(function () {
  "use strict";
  var words = document.getElementById("comments-announce");
  var token = document.querySelector("meta[name=csrf-token]");
  if (!words || !token || !window.fetch) { return; }

  function say(text) {
    // Emptied first, so the same words said twice are announced twice.
    words.textContent = "";
    window.setTimeout(function () { words.textContent = text; }, 50);
  }

  function api(method, path, body) {
    var headers = { "Accept": "application/json", "X-CSRF-Token": token.getAttribute("content") };
    if (body) { headers["Content-Type"] = "application/json"; }
    return fetch("/api/v1" + path, { method: method, credentials: "same-origin", headers: headers,
                                     body: body ? JSON.stringify(body) : undefined });
  }

  function endorsements(count) {
    var template = words.getAttribute(count === 1 ? "data-endorsement-one" : "data-endorsement-other");
    return template.replace("{count}", count.toLocaleString());
  }

  // Endorse, or withdraw: the form's hidden field says which, as it does for the server.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var match = /\/comments\/(\d+)\/endorse$/.exec(form.getAttribute("action") || "");
    if (!match || event.defaultPrevented) { return; }
    event.preventDefault();
    var field = form.querySelector("input[name=endorse]");
    var button = form.querySelector("button");
    var endorsing = field.value !== "0";
    button.disabled = true;
    api(endorsing ? "POST" : "DELETE", "/comments/" + match[1] + "/endorsement")
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (comment) {
        field.value = comment.endorsed_by_me ? "0" : "1";
        button.setAttribute("aria-pressed", comment.endorsed_by_me ? "true" : "false");
        var count = form.parentNode.querySelector(".endorsements");
        if (count) { count.textContent = endorsements(comment.endorsement_count); }
        button.disabled = false;
        say(words.getAttribute(comment.endorsed_by_me ? "data-endorsed" : "data-withdrawn"));
      })
      .catch(function () {
        // Refused or offline: the form goes the usual way, and the page that comes back says why.
        button.disabled = false;
        HTMLFormElement.prototype.submit.call(form);
      });
  });

  // A new comment with one's name, from the discussion's form (replies still go to their thread's page).
  var form = document.getElementById("comment-form");
  var list = document.querySelector("[data-live-comments]");
  if (!form || !list) { return; }
  form.addEventListener("submit", function (event) {
    var anonymous = form.querySelector("[data-anonymous-toggle]");
    if (event.defaultPrevented || (anonymous && anonymous.checked)) { return; }
    event.preventDefault();
    var textarea = form.querySelector("textarea[name=body]");
    var submit = form.querySelector("button[type=submit]");
    var petition = /\/petitions\/(\d+)\/comments$/.exec(form.getAttribute("action"))[1];
    submit.disabled = true;
    api("POST", "/petitions/" + petition + "/comments", { body: textarea.value })
      .then(function (response) {
        if (response.status !== 201) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (comment) {
        // The server renders it, as it renders the rest of the list (and any other new comment with it).
        var url = list.getAttribute("data-live-url") + "?after=" + encodeURIComponent(list.getAttribute("data-after"));
        fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
          .then(function (page) {
            if (!page.ok) { throw new Error(String(page.status)); }
            var latest = page.headers.get("X-Latest-Comment");
            return page.text().then(function (html) {
              if (latest) { list.setAttribute("data-after", latest); }
              list.insertAdjacentHTML("afterbegin", html);
              var empty = list.parentNode.querySelector(":scope > p.empty");
              if (empty) { empty.remove(); }
              textarea.value = "";
              submit.disabled = false;
              var added = document.getElementById("comment-" + comment.id);
              if (added) { added.scrollIntoView({ block: "nearest" }); }
              // The address names the new comment, as the page the form leads to without this script does.
              window.history.replaceState(null, "", "#comment-" + comment.id);
              say(words.getAttribute("data-posted"));
              document.dispatchEvent(new CustomEvent("undersigned:comments-added"));
            });
          })
          .catch(function () {
            // Posted, but the list could not be fetched: the page with the new comment on it, as without script
            // (never the form again: that would post it twice).
            window.location.assign("/petitions/" + petition + "/comments?sort=newest#comment-" + comment.id);
          });
      }, function () {
        // Refused (too long, too fast, closed...) or offline: the form goes the usual way, and the page that
        // comes back shows why, with the text kept. Nothing was posted, so nothing is posted twice.
        submit.disabled = false;
        HTMLFormElement.prototype.submit.call(form);
      });
  });
})();
