// The share row's copy button (templates/includes/_share.html). Without this script the button stays hidden and
// the link waits in its read-only field, to select and copy by hand; with it, one press copies the link and the
// row says so in words, and where the browser has a share sheet (phones), "More ways to share" opens it. A page may hold more than one row, and may load this script once per row: each row is
// set up once.
(function () {
  "use strict";

  function copyBySelection(field) {
    field.focus();
    field.select();
    try { return document.execCommand("copy"); } catch (error) { return false; }
  }

  function setUp(row) {
    var field = row.querySelector("[data-share-link]");
    var button = row.querySelector("[data-share-copy]");
    var status = row.querySelector("[data-share-status]");
    if (!field || !button || !status) { return; }
    row.setAttribute("data-share-ready", "true");
    button.hidden = false;
    // A tap in the field selects the whole link, ready for the phone's own Copy.
    field.addEventListener("focus", function () { field.select(); });

    function say(copied) {
      status.textContent = status.getAttribute(copied ? "data-copied" : "data-failed");
    }

    var native = row.querySelector("[data-share-native]");
    if (native && typeof navigator.share === "function") {
      native.hidden = false;
      native.addEventListener("click", function () {
        // Closing the sheet without choosing rejects the promise: nothing to say then.
        navigator.share({ title: native.getAttribute("data-title"), url: field.value }).catch(function () {});
      });
    }

    button.addEventListener("click", function () {
      status.textContent = "";
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(
          function () { say(true); },
          function () { say(copyBySelection(field)); });
      } else {
        say(copyBySelection(field));
      }
    });
  }

  function setUpAll() {
    var rows = document.querySelectorAll("[data-share]:not([data-share-ready])");
    for (var index = 0; index < rows.length; index += 1) { setUp(rows[index]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUpAll);
  } else {
    setUpAll();
  }
})();
