// The admin file list's bulk selection: a "select all on this page" box, the count of what
// is selected, and an Apply button that waits for a selection. Without this script the row
// boxes and the Apply button work alone (and a link checks every row), so this only adds
// convenience.
(function () {
  "use strict";
  var form = document.getElementById("bulk");
  if (!form) return;
  var all = form.querySelector("input[data-select-all]");
  var boxes = Array.prototype.slice.call(form.querySelectorAll("input[name=ids]"));
  var count = form.querySelector("[data-selected-count]");
  var apply = form.querySelector("button[data-bulk-apply]");
  if (!all || boxes.length === 0) return;

  function update() {
    var n = boxes.filter(function (b) { return b.checked; }).length;
    all.checked = n === boxes.length;
    all.indeterminate = n > 0 && n < boxes.length;
    if (count) count.textContent = n === 1 ? "1 file selected" : n + " files selected";
    if (apply) apply.disabled = n === 0;
  }

  var wrapper = all.closest("[hidden]");
  if (wrapper) wrapper.hidden = false;
  var link = form.querySelector(".select-all-link");
  if (link) link.hidden = true;
  all.addEventListener("change", function () {
    boxes.forEach(function (b) { b.checked = all.checked; });
    update();
  });
  boxes.forEach(function (b) { b.addEventListener("change", update); });
  update();
})();
