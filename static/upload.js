// The upload page, enhanced: drop several files, each goes up in its own request with a
// progress bar, and each shows its result when it finishes. Without this script the page is
// a plain multipart form and still works.
(function () {
  "use strict";
  var form = document.querySelector("form.upload");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var input = form.querySelector("input[type=file]");
  var submit = form.querySelector("button[type=submit]");
  var queued = [];

  var zone = document.createElement("div");
  zone.className = "dropzone";
  zone.tabIndex = 0;
  zone.setAttribute("role", "button");
  zone.setAttribute("aria-describedby", "file-hint");
  zone.textContent = "Drop files here, or press Enter to choose them";
  input.parentNode.insertBefore(zone, input);
  input.classList.add("with-dropzone");
  input.required = false;

  var list = document.createElement("ul");
  list.className = "uploads";
  list.setAttribute("aria-live", "polite");
  form.parentNode.insertBefore(list, form.nextSibling);

  // Bidi controls and invisible characters as visible [U+XXXX] markers, as the pages show
  // them (the same sets as src/display.rs, where each is explained): a name like
  // "invoice\u202Efdp.exe" cannot pass for a PDF, while an emoji keeps the presentation
  // selector right after it (U+2764 U+FE0F stays a red heart).
  var INVISIBLE = /[\u0000-\u001F\u007F-\u009F\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u2028-\u202E\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF0-\uFFFB\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}]/u;
  var EMOJI_BASE = /[\u00A9\u00AE\u203C\u2049\u2122\u2139\u2190-\u2BFF\u3030\u303D\u3297\u3299\u{1F000}-\u{1FAFF}]/u;
  var PRESENTATION = /[\uFE0E\uFE0F]/;
  function shown(text) {
    var out = "";
    var afterEmoji = false;
    // Array.from walks code points, so a character beyond U+FFFF is one marker.
    Array.from(String(text)).forEach(function (c) {
      var hidden = INVISIBLE.test(c) && !(afterEmoji && PRESENTATION.test(c));
      afterEmoji = EMOJI_BASE.test(c) && !INVISIBLE.test(c);
      if (hidden) {
        var hex = c.codePointAt(0).toString(16).toUpperCase();
        out += "[U+" + ("0000" + hex).slice(-Math.max(4, hex.length)) + "]";
      } else {
        out += c;
      }
    });
    return out;
  }

  function human(bytes) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
    return (i === 0 ? bytes : bytes.toFixed(1)) + " " + units[i];
  }

  function add(files) {
    for (var i = 0; i < files.length; i++) {
      var file = files[i];
      var row = document.createElement("li");
      row.className = "upload waiting";
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = shown(file.name) + " (" + human(file.size) + ")";
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", "Upload of " + shown(file.name));
      var status = document.createElement("span");
      status.className = "status";
      status.textContent = "waiting";
      row.appendChild(name);
      row.appendChild(bar);
      row.appendChild(status);
      list.appendChild(row);
      queued.push({ file: file, row: row, bar: bar, status: status });
    }
    submit.textContent = queued.length === 1 ? "Upload 1 file" : "Upload " + queued.length + " files";
  }

  function finish(item, ok, text, link) {
    item.row.className = "upload " + (ok ? "stored" : "refused");
    item.bar.value = 100;
    item.status.textContent = shown(text);
    if (link) {
      var a = document.createElement("a");
      a.href = link;
      a.textContent = "details";
      item.status.appendChild(document.createTextNode(" "));
      item.status.appendChild(a);
    }
  }

  function send(item, fields) {
    var data = new FormData();
    fields.forEach(function (pair) { data.append(pair[0], pair[1]); });
    data.append("file", item.file, item.file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    item.row.className = "upload sending";
    item.status.textContent = "0%";
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var percent = Math.floor((e.loaded / e.total) * 100);
      item.bar.value = percent;
      item.status.textContent = percent + "%";
    });
    xhr.addEventListener("load", function () {
      var result = null;
      try { result = JSON.parse(xhr.responseText); } catch (e) { result = null; }
      var one = result && result.files && result.files[0];
      if (one && one.stored) {
        finish(item, true, "stored", one.url);
      } else if (one) {
        finish(item, false, "refused: " + one.reason);
      } else if (xhr.status === 403) {
        finish(item, false, "refused: the form expired; reload the page");
      } else if (xhr.status === 413) {
        finish(item, false, "refused: the file is too large");
      } else {
        finish(item, false, "failed (" + xhr.status + " " + xhr.statusText + ")");
      }
    });
    xhr.addEventListener("error", function () {
      finish(item, false, "failed: the connection broke off");
    });
    xhr.send(data);
  }

  zone.addEventListener("click", function () { input.click(); });
  zone.addEventListener("keydown", function (e) {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  zone.addEventListener("dragover", function (e) { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files) add(e.dataTransfer.files);
  });
  input.addEventListener("change", function () {
    add(input.files);
    input.value = "";
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var waiting = queued.filter(function (item) { return item.row.classList.contains("waiting"); });
    if (waiting.length === 0) {
      zone.focus();
      zone.classList.add("empty");
      return;
    }
    zone.classList.remove("empty");
    var fields = [];
    new FormData(form).forEach(function (value, key) {
      if (key !== "file") fields.push([key, value]);
    });
    waiting.forEach(function (item) { send(item, fields); });
  });
})();
