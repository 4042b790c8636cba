// The owner and readers pickers of the upload and file pages. Without this script they are
// plain text fields of usernames, checked by the server. With it:
// - the readers fieldset shows only while "the owner and the listed users" is chosen;
// - typing in "Search users to add" asks /admin/usernames (active users whose name contains
//   the text) and lists them as buttons that add the name to the readers field;
// - the owner field suggests the matching names as it is typed (a datalist).
(function () {
  "use strict";
  var DELAY = 150;

  function lookup(text, done) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", "/admin/usernames?q=" + encodeURIComponent(text));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.addEventListener("load", function () {
      var names = [];
      try { names = JSON.parse(xhr.responseText).users || []; } catch (e) { names = []; }
      done(xhr.status === 200 ? names : []);
    });
    xhr.addEventListener("error", function () { done([]); });
    xhr.send();
    return xhr;
  }

  // Calls `ask(text, answer)` once typing pauses; only the latest answer is shown.
  function asYouType(input, ask, show) {
    var timer = null;
    var latest = 0;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var text = input.value.trim();
      var turn = ++latest;
      if (!text) { show([]); return; }
      timer = setTimeout(function () {
        ask(text, function (names) { if (turn === latest) show(names); });
      }, DELAY);
    });
  }

  function names(text) {
    return text.split(/[\s,]+/).filter(function (n) { return n.length > 0; });
  }

  document.querySelectorAll("[data-readers-for]").forEach(function (fieldset) {
    var rule = document.getElementById(fieldset.getAttribute("data-readers-for"));
    if (!rule) return;
    var toggle = function () { fieldset.hidden = rule.value !== "users"; };
    rule.addEventListener("change", toggle);
    toggle();
  });

  document.querySelectorAll("textarea[data-picker=readers]").forEach(function (field, index) {
    var id = "reader-search-" + index;
    var label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = "Search users to add";
    var search = document.createElement("input");
    search.type = "search";
    search.id = id;
    search.autocomplete = "off";
    search.spellcheck = false;
    search.setAttribute("autocapitalize", "none");
    var results = document.createElement("ul");
    results.className = "picker-results";
    results.setAttribute("aria-live", "polite");
    results.setAttribute("aria-label", "Matching users");
    // After the field, so its own label stays right above it.
    var after = field.nextSibling;
    field.parentNode.insertBefore(label, after);
    field.parentNode.insertBefore(search, after);
    field.parentNode.insertBefore(results, after);

    var show = function (found) {
      results.textContent = "";
      var chosen = names(field.value);
      found.forEach(function (name) {
        var item = document.createElement("li");
        var add = document.createElement("button");
        add.type = "button";
        add.className = "secondary";
        var listed = chosen.indexOf(name) >= 0;
        add.textContent = (listed ? "✓ " : "+ ") + name;
        add.setAttribute("aria-label", listed ? name + " is listed" : "Add " + name);
        add.disabled = listed;
        add.addEventListener("click", function () {
          var now = names(field.value);
          if (now.indexOf(name) < 0) now.push(name);
          field.value = now.join(", ");
          show(found);
          search.focus();
        });
        item.appendChild(add);
        results.appendChild(item);
      });
      if (found.length === 0 && search.value.trim()) {
        var none = document.createElement("li");
        none.className = "hint";
        none.textContent = "No active user matches.";
        results.appendChild(none);
      }
    };
    asYouType(search, lookup, show);
    // Enter in the search adds the only match rather than sending the form.
    search.addEventListener("keydown", function (e) {
      if (e.key !== "Enter") return;
      e.preventDefault();
      var buttons = results.querySelectorAll("button:not([disabled])");
      if (buttons.length === 1) buttons[0].click();
    });
  });

  document.querySelectorAll("input[data-picker=owner]").forEach(function (field, index) {
    var list = document.createElement("datalist");
    list.id = "owner-choices-" + index;
    field.parentNode.insertBefore(list, field.nextSibling);
    field.setAttribute("list", list.id);
    asYouType(field, lookup, function (found) {
      list.textContent = "";
      found.forEach(function (name) {
        var option = document.createElement("option");
        option.value = name;
        list.appendChild(option);
      });
    });
  });
})();
