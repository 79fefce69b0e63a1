// Live updates for the dashboard: when the server says something changed, reload the fragment.
(function () {
  "use strict";
  document.querySelectorAll("[data-live]").forEach(function (box) {
    var source = new EventSource(box.getAttribute("data-live"));
    source.addEventListener("changed", function () {
      fetch(box.getAttribute("data-fragment"), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) { box.innerHTML = html; } });
    });
  });
})();
