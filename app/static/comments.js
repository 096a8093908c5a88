// Live discussion: how many new comments there are, and the comments themselves when the reader asks (or at once,
// when the discussion is sorted newest first). Without this script the page works the same, and a reload shows
// them. (Anonymous comments, for those who can post them: anonymous-comments.js.)
(function () {
  "use strict";
  var list = document.querySelector("[data-live-comments]");
  var status = document.getElementById("comments-live");
  if (!list || !status || !list.hasAttribute("data-count-url") || !window.fetch) { return; }
  var INTERVAL = Number(list.getAttribute("data-interval")) || 15000;
  var offered = 0;  // the count the reader is offered now
  // The discussion's version (ETag) as of the last answer, the count's or the comments': while it holds, the
  // server answers 304 without reading anything, and there is nothing new.
  var etag = null;

  function since(url) { return url + "?after=" + encodeURIComponent(list.getAttribute("data-after")); }

  function say(text) {
    offered = 0;
    status.textContent = text;
  }

  // The comments themselves, rendered by the server for this reader (their own controls in them).
  function show() {
    return fetch(since(list.getAttribute("data-live-url")),
                 { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        etag = response.headers.get("ETag");
        var count = Number(response.headers.get("X-New-Comments") || "0");
        var latest = response.headers.get("X-Latest-Comment");
        return response.text().then(function (html) {
          if (latest) { list.setAttribute("data-after", latest); }
          if (!count || !html.trim()) {
            say(count ? count + (count === 1 ? " new reply" : " new replies") + ": reload to see " +
                (count === 1 ? "it" : "them") + "." : "");
            return;
          }
          // Server-rendered and sanitized, like the rest of the list. Only new top-level comments come in;
          // new replies are counted, and shown under their comment on the next load.
          // They go below the author's own comments still waiting for their batch (anonymous-comments.js
          // shows those on top), which are not counted.
          var waiting = list.querySelectorAll(":scope > li.comment-pending");
          var before = list.children.length;
          if (waiting.length) {
            waiting[waiting.length - 1].insertAdjacentHTML("afterend", html);
          } else {
            list.insertAdjacentHTML("afterbegin", html);
          }
          var empty = list.parentNode.querySelector(":scope > p.empty");
          if (empty) { empty.remove(); }
          var added = list.children.length - before;
          var replies = count - added;
          say(added + (added === 1 ? " new comment" : " new comments") + " added" +
              (replies > 0 ? ", and " + replies + (replies === 1 ? " new reply" : " new replies") +
               ": reload to see " + (replies === 1 ? "it" : "them") : "") + ".");
          document.dispatchEvent(new CustomEvent("undersigned:comments-added"));
        });
      });
  }

  // "3 new comments: show them", a button in the live region: the list stays still while the reader reads it.
  function offer(count) {
    offered = count;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = count + (count === 1 ? " new comment" : " new comments") + ": show them";
    button.addEventListener("click", function () {
      button.disabled = true;
      show().catch(function () { button.disabled = false; });
    });
    status.replaceChildren(button);
  }

  // How many new comments every reader sees: offered, or shown at once when the discussion is sorted newest first.
  function take(count) {
    if (count === offered) { return null; }
    if (!count) { say(""); return null; }  // hidden since: nothing to offer
    if (list.getAttribute("data-sort") === "newest") { return show(); }
    offer(count);
    return null;
  }

  // The count only: the same answer for every reader of a public petition, shared by their polls while the
  // discussion's version holds (app/core/livepolls.py), where the comments are rendered for each reader.
  function poll() {
    if (document.hidden) { window.setTimeout(poll, INTERVAL); return; }
    var headers = { "Accept": "application/json" };
    if (etag) { headers["If-None-Match"] = etag; }
    fetch(since(list.getAttribute("data-count-url")), { credentials: "same-origin", cache: "no-store", headers: headers })
      .then(function (response) {
        if (!response.ok) { return null; }  // 304 included: nothing new
        etag = response.headers.get("ETag");
        return response.json();
      })
      .then(function (answer) { return answer ? take(answer.count) : null; })
      .catch(function () { /* offline for a moment: try again at the next interval */ })
      .then(function () { window.setTimeout(poll, INTERVAL); });
  }
  // The reader's own comment brought the list up to date (and the place with it): the count starts again.
  document.addEventListener("undersigned:comments-added", function () {
    if (offered) { say(""); }
  });
  // On an open petition's page the tally's poll asks for the count too (tally.js, one request for both); this
  // script polls on its own where there is no tally, and once the tally stops (the petition closed).
  if (document.querySelector("[data-live-tally][data-polling]")) {
    document.addEventListener("undersigned:live", function (event) {
      if (typeof event.detail.new_comments === "number") {
        Promise.resolve(take(event.detail.new_comments)).catch(function () { /* shown at the next answer */ });
      }
    });
    document.addEventListener("undersigned:live-ended", function () { window.setTimeout(poll, INTERVAL); });
  } else {
    window.setTimeout(poll, INTERVAL);
  }
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

// Replies with one's name, in place: from a comment's own page (its reply form), and on the discussion, from a
// form that opens under the comment when its Reply link is followed (a copy of the comment form). The reply is
// posted through the JSON API and shown under its parent as the server renders it; the form without this script
// (which keeps working) leads to the comment's page. An anonymous reply is anonymous-comments.js's: it leaves
// from the comment's page, without cookies and into its batch, and nothing here sends anything with it.
(function () {
  "use strict";
  var words = document.getElementById("comments-announce");
  var token = document.querySelector("meta[name=csrf-token]");
  if (!words || !token || !window.fetch || !window.DOMParser) { return; }

  function say(text) {
    words.textContent = "";
    window.setTimeout(function () { words.textContent = text; }, 50);
  }

  function placeUnder(parentId, item) {
    var parent = document.getElementById("comment-" + parentId);
    if (!parent) { return null; }
    // A new reply has no replies of its own; the copy from its page may say "All 0 replies" links: none.
    item.querySelectorAll(":scope > ol.replies, :scope > p.more-replies").forEach(function (node) { node.remove(); });
    var replies = parent.querySelector(":scope > ol.replies");
    if (!replies) {
      replies = document.createElement("ol");
      replies.className = "replies";
      parent.querySelector(":scope > article").after(replies);
    }
    replies.appendChild(item);
    return item;
  }

  function sendReply(form) {
    var textarea = form.querySelector("textarea[name=body]");
    var submit = form.querySelector("button[type=submit]");
    var petition = /\/petitions\/(\d+)\/comments$/.exec(form.getAttribute("action"))[1];
    var parentId = Number(form.querySelector("input[name=parent_id]").value);
    submit.disabled = true;
    fetch("/api/v1/petitions/" + petition + "/comments", {
      method: "POST", credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/json",
                 "X-CSRF-Token": token.getAttribute("content") },
      body: JSON.stringify({ body: textarea.value, parent_id: parentId }),
    })
      .then(function (response) {
        if (response.status !== 201) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (reply) {
        // Its own page renders it, with what this reader may do with it. A reply to the deepest level is placed
        // beside its comment (reply.parent_id), as the server decided.
        var where = "/comments/" + reply.parent_id + "#comment-" + reply.id;
        fetch("/comments/" + reply.id, { credentials: "same-origin", headers: { "Accept": "text/html" } })
          .then(function (page) {
            if (!page.ok) { throw new Error(String(page.status)); }
            return page.text();
          })
          .then(function (html) {
            var found = new DOMParser().parseFromString(html, "text/html").getElementById("comment-" + reply.id);
            var item = found && placeUnder(reply.parent_id, document.importNode(found, true));
            if (!item) { throw new Error("its parent is not on this page"); }
            textarea.value = "";
            submit.disabled = false;
            var article = item.querySelector(":scope > article");
            article.setAttribute("tabindex", "-1");
            if (form.classList.contains("reply-in-place")) { form.remove(); }
            article.focus();
            window.history.replaceState(null, "", "#comment-" + reply.id);
            say(words.getAttribute("data-replied"));
            document.dispatchEvent(new CustomEvent("undersigned:comments-added"));
          })
          .catch(function () {
            // Posted, but it could not be shown here: its page, as without this script (never the form again).
            window.location.assign(where);
          });
      }, function () {
        // Refused (empty, too long, too fast, closed...) or offline: the form goes the usual way, and the page that
        // comes back shows why with the text kept. Nothing was posted, so nothing is posted twice.
        submit.disabled = false;
        HTMLFormElement.prototype.submit.call(form);
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.querySelector("input[name=parent_id]") ||
        !/\/petitions\/\d+\/comments$/.test(form.getAttribute("action") || "")) { return; }
    var anonymous = form.querySelector("[data-anonymous-toggle]");
    if (anonymous && anonymous.checked) { return; }  // anonymous-comments.js sends it, or the form does
    event.preventDefault();
    sendReply(form);
  });

  // On the discussion: Reply opens a form under the comment instead of leaving for the comment's page.
  var compose = document.getElementById("comment-form");
  var list = document.querySelector("[data-live-comments]");
  if (!compose || !list) { return; }
  list.addEventListener("click", function (event) {
    var link = event.target.closest("a[href$='#reply']");
    var match = link && /^\/comments\/(\d+)#reply$/.exec(link.getAttribute("href"));
    if (!match || event.defaultPrevented || event.ctrlKey || event.metaKey || event.shiftKey) { return; }
    event.preventDefault();
    var id = match[1];
    var article = link.closest("article");
    var open = article.parentNode.querySelector(":scope > form.reply-in-place");
    if (open) { open.querySelector("textarea").focus(); return; }
    var form = compose.cloneNode(true);
    form.removeAttribute("id");
    form.classList.add("reply-in-place");
    // Anonymous replies leave from the comment's page, where this browser's credential is used; errors of the
    // comment form stay with it.
    form.querySelectorAll("[data-anonymous-comment], .error, .error-summary").forEach(function (node) { node.remove(); });
    form.querySelectorAll("[id]").forEach(function (node) { node.id = node.id + "-" + id; });
    form.querySelectorAll("[for]").forEach(function (node) { node.htmlFor = node.htmlFor + "-" + id; });
    form.querySelectorAll("[aria-describedby]").forEach(function (node) {
      node.setAttribute("aria-describedby", node.getAttribute("aria-describedby").split(/\s+/)
        .map(function (part) { return part + "-" + id; }).join(" "));
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (node) { node.removeAttribute("aria-invalid"); });
    var parent = document.createElement("input");
    parent.type = "hidden";
    parent.name = "parent_id";
    parent.value = id;
    form.prepend(parent);
    var textarea = form.querySelector("textarea[name=body]");
    textarea.value = "";
    var label = form.querySelector("label[for='" + textarea.id + "']");
    if (label) { label.textContent = words.getAttribute("data-reply-label"); }
    var submit = form.querySelector("button[type=submit]");
    submit.textContent = words.getAttribute("data-reply-button");
    if (compose.querySelector("[data-anonymous-comment]")) {
      var note = document.createElement("p");
      note.className = "hint";
      var away = document.createElement("a");
      away.href = "/comments/" + id + "#reply";
      away.textContent = words.getAttribute("data-reply-anonymous");
      note.appendChild(away);
      submit.before(note);
    }
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary";
    cancel.textContent = words.getAttribute("data-reply-cancel");
    cancel.addEventListener("click", function () { form.remove(); link.focus(); });
    submit.after(cancel);
    article.after(form);
    textarea.focus();
  });
})();
