// Anonymous comments, carried by the wallet rather than the session. Loaded only for a signed-in member, on
// the discussion of a petition that takes anonymous comments (templates/comments/_anonymous_tools.html).
//
// The wallet (wallet.js) keeps, in this browser's IndexedDB, a discussion credential for each open petition
// that takes anonymous comments. This script sends an anonymous comment without cookies, authorised by that
// credential, and never through the signed-in form; it recognises the author's own anonymous comments by the
// pseudonym the credential gives ("Colleague " + 6 hex of SHA-256("undersigned/pseudonym/v1" || message),
// computed here) and offers Edit and Delete, sent the same way; and it shows a comment still waiting for its
// batch to its author alone, from IndexedDB. Nothing here asks the server which comments are whose.
(function () {
  "use strict";
  var list = document.querySelector("[data-live-comments]");
  var home = document.querySelector("[data-anonymous-discussion]");
  var block = document.querySelector("[data-anonymous-comment]");
  var accountMeta = document.querySelector('meta[name="undersigned-account"]');
  if (!home || !accountMeta) { return; }
  var account = accountMeta.getAttribute("content");
  var petitionId = Number(home.getAttribute("data-petition-id"));
  var PATH = "/api/v1/anonymous/comments";
  var KEEP_PUBLISHED = 50; // own published comments whose Markdown is kept, to edit from the words as written

  function show(element, visible) { if (element) { element.hidden = !visible; } }

  function unavailable(reason) {
    if (!block) { return; }
    show(block.querySelector("[data-anonymous-available]"), false);
    block.querySelectorAll("[data-anonymous-unavailable]").forEach(function (element) {
      show(element, element.getAttribute("data-anonymous-unavailable") === reason);
    });
  }

  function fromBase64url(value) {
    var text = atob(value.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((value.length + 3) % 4));
    return Uint8Array.from(text, function (character) { return character.charCodeAt(0); });
  }

  function request(store, mode, work) {
    return new Promise(function (resolve, reject) {
      var transaction = store.transaction("tokens", mode);
      var result = work(transaction.objectStore("tokens"));
      transaction.oncomplete = function () { resolve(result ? result.result : undefined); };
      transaction.onerror = function () { reject(transaction.error); };
      transaction.onabort = function () { reject(transaction.error); };
    });
  }

  // The wallet's database (wallet.js makes the same store when it runs first).
  function openWallet() {
    return new Promise(function (resolve, reject) {
      var opening = indexedDB.open("undersigned-wallet", 1);
      opening.onupgradeneeded = function () { opening.result.createObjectStore("tokens", { keyPath: "id" }); };
      opening.onsuccess = function () { resolve(opening.result); };
      opening.onerror = function () { reject(opening.error); };
      opening.onblocked = function () { reject(new Error("blocked")); };
    });
  }

  // The wallet (wallet.js, or wallet-loader.js deciding it is not needed) marks the page when it is done
  // collecting: a credential collected on this very page is read after that.
  function walletSettled() {
    var root = document.documentElement;
    return new Promise(function (resolve) {
      if (root.hasAttribute("data-wallet-ready")) { resolve(root.getAttribute("data-wallet-ready")); return; }
      var timer = window.setTimeout(function () { observer.disconnect(); resolve("timeout"); }, 30000);
      var observer = new MutationObserver(function () {
        if (!root.hasAttribute("data-wallet-ready")) { return; }
        observer.disconnect();
        window.clearTimeout(timer);
        resolve(root.getAttribute("data-wallet-ready"));
      });
      observer.observe(root, { attributes: true, attributeFilter: ["data-wallet-ready"] });
    });
  }

  function pseudonymOf(message) {
    var prefix = new TextEncoder().encode("undersigned/pseudonym/v1");
    var bytes = fromBase64url(message);
    var joined = new Uint8Array(prefix.length + bytes.length);
    joined.set(prefix);
    joined.set(bytes, prefix.length);
    return crypto.subtle.digest("SHA-256", joined).then(function (digest) {
      var hex = Array.from(new Uint8Array(digest), function (byte) { return byte.toString(16).padStart(2, "0"); });
      return "Colleague " + hex.join("").slice(0, 6);
    });
  }

  // Without cookies, cache or referrer: nothing in the request says who sends it.
  function sendAnonymously(path, payload) {
    return fetch(path, {
      method: "POST", credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(payload),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        return { ok: response.ok, status: response.status, body: body };
      });
    });
  }

  // The body is read even from a refusal: a response left unread keeps its request open in some browsers.
  function readJson(response) {
    return response.json().catch(function () { return null; }).then(function (body) {
      return response.ok ? body : null;
    });
  }

  function problem(answer) {
    var error = answer.body && answer.body.error;
    if (!error) { return "The server did not take it (" + answer.status + "). Try again in a moment."; }
    var fields = Object.keys(error.fields || {}).map(function (name) { return error.fields[name]; });
    return [error.message].concat(fields).join(" ");
  }

  function within(seconds) {
    if (!(seconds > 60)) { return "within a minute"; }
    var minutes = Math.ceil(seconds / 60);
    if (minutes < 90) { return "within " + minutes + " minutes"; }
    var hours = Math.ceil(minutes / 60);
    return "within " + hours + (hours === 1 ? " hour" : " hours");
  }

  // Letters and digits only, from the Markdown as written and from the comment as rendered, to recognise a
  // queued comment once its batch is published (link addresses and list numbers are not shown as text).
  function words(text) { return text.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ""); }
  function wordsOfMarkdown(markdown) {
    return words(markdown.replace(/\]\([^)]*\)/g, "]").replace(/^\s*\d+[.)]\s/gm, " "));
  }

  // Beside the credential in the wallet's store, under an id of its own (random: it says nothing of order).
  function commentRecordId() {
    var random = Array.from(crypto.getRandomValues(new Uint8Array(8)), function (byte) {
      return byte.toString(16).padStart(2, "0");
    });
    return account + ":" + petitionId + ":comment:" + random.join("");
  }

  function clone(selector) { return home.querySelector(selector).content.cloneNode(true); }

  function ownArticles(pseudonym) {
    return Array.prototype.filter.call(document.querySelectorAll("article[data-pseudonym]"), function (article) {
      return article.getAttribute("data-pseudonym") === pseudonym;
    });
  }

  // -- the author's queued comments, from this browser only --------------------------------------------------
  function ownComments(store) {
    return request(store, "readonly", function (tokens) { return tokens.getAll(); }).then(function (all) {
      return all.filter(function (item) {
        return item.kind === "comment" && item.account === account && item.petitionId === petitionId;
      });
    });
  }

  function renderPending(item) {
    var piece = clone("template[data-pending-comment]");
    var li = piece.querySelector("li");
    li.setAttribute("data-pending-id", item.id);
    li.querySelector("[data-pending-pseudonym]").textContent = item.pseudonym;
    var body = li.querySelector("[data-pending-body]");
    item.body.split(/\n\s*\n/).forEach(function (paragraph) {
      var p = document.createElement("p");
      p.textContent = paragraph; // as written, never as HTML: the server has not sanitized it yet
      body.appendChild(p);
    });
    var parent = item.parentId ? document.getElementById("comment-" + item.parentId) : null;
    if (parent) {
      var replies = parent.querySelector(":scope > ol.replies");
      if (!replies) {
        replies = document.createElement("ol");
        replies.className = "replies";
        parent.querySelector(":scope > article").after(replies);
      }
      replies.appendChild(li);
    } else if (!item.parentId && list) {
      list.prepend(li);
    }
  }

  // A queued comment whose batch is out is now on the page under the pseudonym: stop showing it as waiting,
  // and keep its Markdown (so an edit starts from the words as written).
  function settleQueued(store, items, pseudonym) {
    var queued = items.filter(function (item) { return item.status === "queued"; });
    var published = items.filter(function (item) { return item.status === "published"; });
    var known = {};
    published.forEach(function (item) { known[item.commentId] = true; });
    var changes = [];
    ownArticles(pseudonym).forEach(function (article) {
      var id = article.getAttribute("data-comment-id");
      if (known[id]) { return; }
      var body = article.querySelector(".comment-body");
      var rendered = words(body ? body.textContent : "");
      var match = queued.find(function (item) { return !item.settled && wordsOfMarkdown(item.body) === rendered; });
      if (!match) { return; }
      match.settled = true;
      changes.push({ id: match.id, account: account, petitionId: petitionId, kind: "comment", status: "published",
                     commentId: id, body: match.body, pseudonym: pseudonym, keptAt: Date.now() });
    });
    // Queued so long ago that its batch is certainly out, yet not found on this page: it is on another page of
    // the discussion (or was removed). It stops being shown as waiting.
    var stale = queued.filter(function (item) { return !item.settled && Date.now() > item.dueAt + 7 * 86400000; });
    var keep = published.concat(changes).sort(function (a, b) { return (b.keptAt || 0) - (a.keptAt || 0); });
    var dropped = keep.slice(KEEP_PUBLISHED).concat(stale);
    var waiting = function () {
      return queued.filter(function (item) { return !item.settled && stale.indexOf(item) < 0; });
    };
    if (!changes.length && !dropped.length) { return Promise.resolve(waiting()); }
    return request(store, "readwrite", function (tokens) {
      changes.forEach(function (item) { tokens.put(item); });
      dropped.forEach(function (item) { tokens.delete(item.id); });
    }).then(waiting);
  }

  // -- Edit and Delete on the author's own anonymous comments ------------------------------------------------
  function decorateOwn(store, credential, pseudonym) {
    ownArticles(pseudonym).forEach(function (article) {
      var actions = article.querySelector(".comment-actions");
      if (!actions || actions.querySelector("[data-own-edit]")) { return; }
      var id = article.getAttribute("data-comment-id");
      var tools = clone("template[data-own-tools]");
      tools.querySelectorAll("button").forEach(function (button) {
        button.querySelector(".visually-hidden").textContent += " " + id;
      });
      tools.querySelector("[data-own-edit]").addEventListener("click", function () {
        openEditor(store, credential, article, id);
      });
      tools.querySelector("[data-own-delete]").addEventListener("click", function () {
        openDelete(credential, article, id);
      });
      actions.appendChild(tools);
      // As on one's own named comment: nothing to endorse or flag (the server cannot tell it is the author's).
      actions.querySelectorAll('form[action$="/endorse"], a[href$="/flag"]').forEach(function (element) {
        element.hidden = true;
      });
    });
  }

  function closePanels(article) {
    article.querySelectorAll(".anonymous-edit, .anonymous-delete").forEach(function (panel) { panel.remove(); });
  }

  function panelError(panel, text) {
    var error = panel.querySelector("[data-own-error]");
    error.textContent = text;
    error.hidden = false;
  }

  function keepPublished(store, commentId, text) {
    return ownComments(store).then(function (items) {
      var kept = items.find(function (item) { return item.status === "published" && item.commentId === commentId; });
      return request(store, "readwrite", function (tokens) {
        tokens.put({ id: kept ? kept.id : commentRecordId(), account: account, petitionId: petitionId,
                     kind: "comment", status: "published", commentId: commentId, body: text, keptAt: Date.now() });
      });
    });
  }

  function openEditor(store, credential, article, id) {
    closePanels(article);
    var panel = clone("template[data-own-edit-form]").firstElementChild;
    var textarea = panel.querySelector("[data-edit-body]");
    textarea.id = "anonymous-edit-" + id;
    panel.querySelector("[data-edit-label]").setAttribute("for", textarea.id);
    var body = article.querySelector(".comment-body");
    textarea.value = body ? body.innerText.trim() : "";
    ownComments(store).then(function (items) {
      var kept = items.find(function (item) { return item.status === "published" && item.commentId === id; });
      if (kept) { textarea.value = kept.body; }
    }).catch(function () {});
    panel.querySelector("[data-own-cancel]").addEventListener("click", function () { panel.remove(); });
    panel.querySelector("[data-edit-save]").addEventListener("click", function (event) {
      if (!textarea.reportValidity()) { return; }
      event.target.disabled = true;
      var text = textarea.value;
      sendAnonymously(PATH + "/" + id + "/edit",
                      { message: credential.message, signature: credential.signature, body: text })
        .then(function (answer) {
          if (!answer.ok) { panelError(panel, problem(answer)); return null; }
          if (answer.status === 202) {
            // Applied by the next hourly batch: at once, its moment would be public to anyone reading the page.
            panel.replaceWith(clone("template[data-own-edit-queued]"));
            return keepPublished(store, id, text);
          }
          // Rendered and sanitized by the server, read like any reader reads it: without cookies.
          return fetch("/api/v1/comments/" + id, { credentials: "omit", headers: { "Accept": "application/json" } })
            .then(readJson)
            .then(function (comment) {
              if (comment && comment.body_html !== null && body) { body.innerHTML = comment.body_html; }
              panel.replaceWith(clone("template[data-own-updated]"));
              return keepPublished(store, id, text);
            });
        })
        .catch(function () { panelError(panel, "It could not be sent: check your connection and try again."); })
        .then(function () { event.target.disabled = false; });
    });
    article.appendChild(panel);
    textarea.focus();
  }

  function openDelete(credential, article, id) {
    closePanels(article);
    var panel = clone("template[data-own-delete-form]").firstElementChild;
    panel.querySelector("[data-own-cancel]").addEventListener("click", function () { panel.remove(); });
    panel.querySelector("[data-delete-confirm]").addEventListener("click", function (event) {
      event.target.disabled = true;
      // The message alone proves authorship (a petition's key may be gone by then; the message never is).
      sendAnonymously(PATH + "/" + id + "/delete", { message: credential.message })
        .then(function (answer) {
          if (!answer.ok) { panelError(panel, problem(answer)); event.target.disabled = false; return; }
          if (answer.status === 202) {
            panel.replaceWith(clone("template[data-own-delete-queued]"));
            return;
          }
          article.replaceChildren(clone("template[data-own-deleted]"));
        })
        .catch(function () {
          panelError(panel, "It could not be sent: check your connection and try again.");
          event.target.disabled = false;
        });
    });
    article.appendChild(panel);
    panel.querySelector("[data-delete-confirm]").focus();
  }

  // -- the comment form --------------------------------------------------------------------------------------
  // The anonymity set for comments on this petition, as everyone is shown it (asked without cookies): every
  // colleague who collected its discussion credential. Without the figure, the sentence is left out.
  function anonymitySet() {
    return fetch("/api/v1/petitions/" + petitionId + "/anonymity",
                 { credentials: "omit", headers: { "Accept": "application/json" } })
      .then(readJson)
      .then(function (figures) {
        if (!figures || typeof figures.discussion !== "number") { return null; }
        return { size: figures.discussion,
                 minimum: typeof figures.min_group_size === "number" ? figures.min_group_size : null };
      })
      .catch(function () { return null; });
  }

  function enableForm(store, credential, pseudonym) {
    var form = block.closest("form");
    var toggle = block.querySelector("[data-anonymous-toggle]");
    var details = block.querySelector("[data-anonymous-details]");
    var small = block.querySelector("[data-anonymity-small]");
    var confirm = block.querySelector("[data-anonymity-confirm]");
    var error = block.querySelector("[data-anonymous-error]");
    var queued = block.querySelector("[data-anonymous-queued]");
    var textarea = form.querySelector("textarea[name=body]");
    var submit = form.querySelector("button[type=submit]");
    var named = submit.textContent;
    var parentId = block.getAttribute("data-parent-id");
    var belowMinimum = false;
    var showPseudonym = function (name) {
      block.querySelectorAll("[data-anonymous-pseudonym]").forEach(function (element) { element.textContent = name; });
    };
    showPseudonym(pseudonym);
    unavailable(null);
    show(block.querySelector("[data-anonymous-available]"), true);

    var update = function () {
      show(details, toggle.checked);
      show(small, toggle.checked && belowMinimum);
      confirm.required = toggle.checked && belowMinimum;
      submit.textContent = toggle.checked ? toggle.getAttribute("data-submit-label") : named;
    };
    toggle.addEventListener("change", update);
    anonymitySet().then(function (figure) {
      if (!figure) { return; }
      block.querySelector("[data-anonymity-count]").textContent = figure.size.toLocaleString();
      show(block.querySelector(figure.size > 1 ? "[data-anonymity-figure]" : "[data-anonymity-alone]"), true);
      if (figure.minimum !== null && figure.size < figure.minimum) {
        belowMinimum = true;
        block.querySelector("[data-anonymity-minimum]").textContent = figure.minimum.toLocaleString();
      }
      update();
    });

    form.addEventListener("submit", function (event) {
      if (!toggle.checked) { return; } // with the name: the form goes as it always did
      event.preventDefault();
      error.hidden = true;
      if (belowMinimum && !confirm.checked) { confirm.reportValidity(); return; }
      var text = textarea.value;
      submit.disabled = true;
      sendAnonymously(PATH, { petition_id: petitionId, message: credential.message, signature: credential.signature,
                              body: text, parent_id: parentId ? Number(parentId) : null })
        .then(function (answer) {
          if (!answer.ok) {
            error.textContent = problem(answer);
            error.hidden = false;
            return null;
          }
          var seconds = Number(answer.body.publish_within_seconds) || 0;
          var shownAs = answer.body.pseudonym || pseudonym;
          var item = { id: commentRecordId(), account: account, petitionId: petitionId,
                       kind: "comment", status: "queued", parentId: parentId ? Number(parentId) : null, body: text,
                       pseudonym: shownAs, dueAt: Date.now() + seconds * 1000 };
          return request(store, "readwrite", function (tokens) { tokens.put(item); }).then(function () {
            textarea.value = "";
            toggle.checked = false;
            confirm.checked = false;
            update();
            block.querySelector("[data-anonymous-when]").textContent = within(seconds);
            showPseudonym(shownAs);
            queued.hidden = false;
            renderPending(item);
          });
        })
        .catch(function () {
          error.textContent = "Your comment could not be sent: check your connection and try again. " +
            "It is still in the box.";
          error.hidden = false;
        })
        .then(function () { submit.disabled = false; });
    });
  }

  function start() {
    if (!window.indexedDB || !window.crypto || !crypto.subtle || !window.fetch || !window.TextEncoder) {
      unavailable("storage");
      return Promise.resolve();
    }
    return walletSettled().then(function (walletState) {
      return openWallet().catch(function () { unavailable("storage"); return null; }).then(function (store) {
        if (!store) { return null; }
        var credentialId = account + ":" + petitionId + ":discuss";
        var reading = request(store, "readonly", function (tokens) { return tokens.get(credentialId); });
        return reading.then(function (credential) {
          if (!credential || credential.status !== "held") {
            unavailable(walletState === "error" ? "error" : "credential");
            return null;
          }
          return pseudonymOf(credential.message).then(function (pseudonym) {
            if (block) { enableForm(store, credential, pseudonym); }
            var refresh = function () {
              decorateOwn(store, credential, pseudonym);
              return ownComments(store).then(function (items) { return settleQueued(store, items, pseudonym); });
            };
            document.addEventListener("undersigned:comments-added", function () { refresh().catch(function () {}); });
            return refresh().then(function (waiting) { waiting.forEach(renderPending); });
          });
        });
      });
    });
  }

  start().catch(function () { unavailable("error"); }).then(function () {
    home.setAttribute("data-anonymous-ready", "true"); // for whoever waits on it: the tests, say
  });
})();
