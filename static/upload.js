// The upload page, enhanced: the drop zone is the one picker (it opens the browser's own; the
// plain input it replaces stays for pages without this script). Each file goes up in its own
// request, at most MAX_IN_FLIGHT at a time, with a progress bar and a Cancel button; a refused
// file's bar turns red with the server's reason; a summary ("2 stored, 1 refused") ends the
// run; leaving the page while files are on their way asks first. Without this script the page
// is a plain multipart form and still works.
(function () {
  "use strict";
  var MAX_IN_FLIGHT = 3;
  var form = document.querySelector("form.upload");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var input = form.querySelector("input[type=file]");
  var submit = form.querySelector("button[type=submit]");
  var items = [];
  var fields = null;

  var zone = document.createElement("div");
  zone.className = "dropzone";
  zone.tabIndex = 0;
  zone.setAttribute("role", "button");
  zone.setAttribute("aria-describedby", "file-hint");
  zone.textContent = "Drop files here, or click (Enter) to choose them";
  input.parentNode.insertBefore(zone, input);
  input.hidden = true;
  input.required = false;
  var label = form.querySelector("label[for=" + input.id + "]");
  if (label) {
    label.id = label.id || "files-label";
    label.addEventListener("click", function (e) { e.preventDefault(); zone.focus(); });
  }

  var list = document.createElement("ul");
  list.className = "uploads";
  list.setAttribute("aria-label", "Chosen files");
  zone.parentNode.insertBefore(list, zone.nextSibling);

  var summary = document.createElement("p");
  summary.className = "summary";
  summary.setAttribute("role", "status");
  summary.hidden = true;
  form.parentNode.insertBefore(summary, form.nextSibling);

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

  // The size as the server writes it (src/display.rs, `size`): "0 bytes", "1 byte",
  // "1023 bytes", then IEC units with one decimal and no ".0" ("1 KiB", "1.5 MiB"), the unit
  // chosen before rounding ("1024 KiB"). Rust rounds a tie to even ("1.2 KiB" for 1280
  // bytes) where toFixed rounds it up, so exact ties are rounded here.
  function human(bytes) {
    if (bytes === 1) return "1 byte";
    if (bytes < 1024) return bytes + " bytes";
    var units = "KMGTPE";
    var exp = 1;
    while (exp < units.length && bytes / Math.pow(1024, exp) >= 1024) exp++;
    var value = bytes / Math.pow(1024, exp);
    var text = value.toFixed(1);
    var quarters = value * 4;
    if (Number.isInteger(quarters) && quarters % 2 === 1) {
      var tenths = Math.floor(value * 10);
      text = ((tenths % 2 === 0 ? tenths : tenths + 1) / 10).toFixed(1);
    }
    if (text.slice(-2) === ".0") text = text.slice(0, -2);
    return text + " " + units.charAt(exp - 1) + "iB";
  }

  function count(state) {
    return items.filter(function (item) { return item.state === state; }).length;
  }

  // The button says what a press would do.
  function update() {
    var waiting = count("waiting");
    var sending = count("sending");
    if (waiting > 0) {
      submit.textContent = waiting === 1 ? "Upload 1 file" : "Upload " + waiting + " files";
      submit.disabled = false;
    } else if (sending > 0) {
      submit.textContent = "Uploading…";
      submit.disabled = true;
    } else {
      submit.textContent = "Upload";
      submit.disabled = false;
    }
    if (sending === 0 && waiting === 0 && items.some(function (i) { return i.done; })) report();
  }

  function report() {
    var stored = items.filter(function (i) { return i.state === "stored"; });
    var parts = [stored.length + " stored"];
    var refused = count("refused");
    var cancelled = count("cancelled");
    if (refused) parts.push(refused + " refused");
    if (cancelled) parts.push(cancelled + " cancelled");
    summary.textContent = parts.join(", ") + ". ";
    summary.className = "summary message " + (refused ? "error" : "ok");
    if (stored.length) {
      var all = document.createElement("a");
      all.href = "/admin/files";
      all.textContent = "All files";
      summary.appendChild(all);
      summary.appendChild(document.createTextNode(" · "));
    }
    var more = document.createElement("a");
    more.href = "/admin/files/new";
    more.textContent = "Upload more";
    summary.appendChild(more);
    summary.hidden = false;
  }

  function add(files) {
    summary.hidden = true;
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
      var cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "secondary cancel";
      cancel.textContent = "Cancel";
      cancel.setAttribute("aria-label", "Cancel " + shown(file.name));
      row.appendChild(name);
      row.appendChild(bar);
      row.appendChild(status);
      row.appendChild(cancel);
      list.appendChild(row);
      var item = { file: file, row: row, bar: bar, status: status, cancel: cancel, state: "waiting", xhr: null, done: false };
      cancel.addEventListener("click", stop.bind(null, item));
      items.push(item);
    }
    update();
  }

  function stop(item) {
    if (item.done) return;
    if (item.xhr) item.xhr.abort();
    finish(item, "cancelled", "cancelled");
  }

  function finish(item, state, text, link, duplicates) {
    if (item.done) return;
    item.done = true;
    item.state = state;
    item.xhr = null;
    item.row.className = "upload " + state;
    item.cancel.remove();
    if (state !== "cancelled") item.bar.value = 100;
    item.status.textContent = shown(text);
    if (link) {
      var a = document.createElement("a");
      a.href = link;
      a.textContent = "details";
      item.status.appendChild(document.createTextNode(" "));
      item.status.appendChild(a);
    }
    (duplicates || []).forEach(function (d, i) {
      item.status.appendChild(document.createTextNode(i === 0 ? "; same content as " : ", "));
      var a = document.createElement("a");
      a.href = d.url;
      a.textContent = shown(d.title);
      item.status.appendChild(a);
    });
    next();
    update();
  }

  // Starts waiting files that were sent for, while fewer than MAX_IN_FLIGHT are on their way.
  function next() {
    if (!fields) return;
    items.forEach(function (item) {
      if (item.state === "queued" && count("sending") < MAX_IN_FLIGHT) send(item);
    });
  }

  function send(item) {
    var data = new FormData();
    fields.forEach(function (pair) { data.append(pair[0], pair[1]); });
    data.append("file", item.file, item.file.name);
    var xhr = new XMLHttpRequest();
    item.xhr = xhr;
    item.state = "sending";
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    item.row.className = "upload sending";
    item.status.textContent = "0%";
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable || item.done) return;
      var percent = Math.floor((e.loaded / e.total) * 100);
      item.bar.value = percent;
      item.status.textContent = percent + "%";
    });
    xhr.addEventListener("load", function () {
      var result = null;
      try { result = JSON.parse(xhr.responseText); } catch (e) { result = null; }
      var one = result && result.files && result.files[0];
      if (one && one.stored) {
        finish(item, "stored", "stored", one.url, one.duplicates);
      } else if (one) {
        finish(item, "refused", "refused: " + one.reason);
      } else if (xhr.status === 403) {
        finish(item, "refused", "refused: the form expired; reload the page");
      } else if (xhr.status === 413) {
        finish(item, "refused", "refused: the file is too large");
      } else if (xhr.status === 422) {
        finish(item, "refused", "refused: check the settings below the files (" + xhr.status + ")");
      } else {
        finish(item, "refused", "failed (" + xhr.status + " " + xhr.statusText + ")");
      }
    });
    xhr.addEventListener("error", function () {
      finish(item, "refused", "failed: the connection broke off");
    });
    xhr.send(data);
    update();
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

  window.addEventListener("beforeunload", function (e) {
    if (count("sending") + count("queued") === 0) return;
    e.preventDefault();
    e.returnValue = "";
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var waiting = items.filter(function (item) { return item.state === "waiting"; });
    if (waiting.length === 0) {
      zone.focus();
      zone.classList.add("empty");
      return;
    }
    zone.classList.remove("empty");
    summary.hidden = true;
    // The settings as they are now apply to the files sent now.
    fields = [];
    new FormData(form).forEach(function (value, key) {
      if (key !== "file") fields.push([key, value]);
    });
    waiting.forEach(function (item) {
      item.state = "queued";
      item.status.textContent = "queued";
    });
    next();
    update();
  });
})();
