// Grab page: live stock and state (static/js/follow.js: server-sent events, polling when they
// fail or the server's streams are full), the countdown.
(function () {
  "use strict";
  var panel = document.getElementById("grab-panel");
  if (!panel || !window.leadkitFollow) return;
  var state = panel.getAttribute("data-state");
  var each = window.leadkitEach;

  function apply(s) {
    state = s.state;
    each("[data-stock-left]", function (el) { el.textContent = s.stock_left; });
    each("[data-stock-bar]", function (el) { el.max = s.stock_total || 1; el.value = s.stock_left; });
    window.leadkitShowWhen(s.state);
    each("[data-grab-button]", function (el) {
      if (!el.closest(".htmx-request")) el.disabled = s.state !== "open";
    });
    var current = document.getElementById("grab-panel");
    if (current) current.setAttribute("data-state", s.state);
  }

  window.leadkitLive(panel, "[data-grab-countdown]", apply, function () { return state === "scheduled"; });
  // A panel swapped in by htmx (after a tap) carries the server's state: start from it.
  document.addEventListener("htmx:load", function (event) {
    var el = event.target;
    if (el && el.id === "grab-panel") state = el.getAttribute("data-state");
  });
})();
