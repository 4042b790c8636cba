// Shows each <time datetime="…T…Z"> in the reader's own time zone and language. Without this
// script the page shows the UTC text the server wrote, which stays in the tooltip.
(function () {
  "use strict";
  var format;
  try {
    format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  } catch (e) {
    return;
  }
  var times = document.querySelectorAll("time[datetime*='T']");
  for (var i = 0; i < times.length; i++) {
    var el = times[i];
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) continue;
    el.title = el.textContent;
    el.textContent = format.format(when);
    el.setAttribute("data-localised", "");
  }
})();
