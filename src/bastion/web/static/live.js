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
// Verification progress: follow the server's events, then reload to show the result.
(function () {
  "use strict";
  var box = document.querySelector("[data-progress]");
  var bar = document.getElementById("verify-progress");
  if (!box || !bar || box.textContent.indexOf("verifying") === -1) { return; }
  var source = new EventSource(box.getAttribute("data-progress"));
  source.addEventListener("progress", function (event) {
    var data = JSON.parse(event.data);
    bar.max = data.total || 1;
    bar.value = data.done;
    box.textContent = "verifying… " + data.done + " of " + data.total + " entries";
  });
  source.addEventListener("done", function () { source.close(); window.location.reload(); });
})();
