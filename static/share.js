// The copy button beside a new share link. Without JavaScript the link stays in a plain
// read-only text field to select and copy by hand; the button only appears when it works.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    var status = button.parentNode.querySelector(".copied");
    var say = function (text) { if (status) status.textContent = text; };
    button.hidden = false;
    button.addEventListener("click", function () {
      var fallback = function () {
        field.focus();
        field.select();
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        say(ok ? "Copied." : "Press Ctrl+C (⌘C) to copy.");
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () { say("Copied."); }, fallback);
      } else {
        fallback();
      }
    });
    field.addEventListener("focus", function () { field.select(); });
  });
})();
