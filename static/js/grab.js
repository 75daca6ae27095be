// Grab page: live stock and state (static/js/follow.js: server-sent events, polling when they
// fail or the server's streams are full), the countdown.
(function () {
  "use strict";
  var panel = document.getElementById("grab-panel");
  if (!panel || !window.leadkitFollow) return;
  var state = panel.getAttribute("data-state");
  var startsIn = parseInt(panel.getAttribute("data-starts-in"), 10);
  // The server's "seconds to go", not the phone's clock, which may be off by minutes.
  var deadline = startsIn >= 0 ? Date.now() + startsIn * 1000 : null;

  function each(selector, fn) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), fn);
  }

  function apply(s) {
    state = s.state;
    deadline = s.starts_in !== null && s.starts_in !== undefined ? Date.now() + s.starts_in * 1000 : null;
    each("[data-stock-left]", function (el) { el.textContent = s.stock_left; });
    each("[data-stock-bar]", function (el) { el.max = s.stock_total || 1; el.value = s.stock_left; });
    each("[data-when]", function (el) {
      el.hidden = el.getAttribute("data-when").split(" ").indexOf(s.state) < 0;
    });
    each("[data-grab-button]", function (el) {
      if (!el.closest(".htmx-request")) el.disabled = s.state !== "open";
    });
    var current = document.getElementById("grab-panel");
    if (current) current.setAttribute("data-state", s.state);
    tick();
  }

  var ask = window.leadkitFollow(
    panel.getAttribute("data-status-url"), panel.getAttribute("data-events-url"), apply);

  function tick() {
    if (deadline === null) return;
    var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    var text = window.leadkitClock(left);
    each("[data-grab-countdown]", function (el) { el.textContent = text; });
    // At zero, ask the server rather than assume: the host may have changed the plan.
    if (left === 0 && state === "scheduled") ask();
  }

  window.setInterval(tick, 250);
  tick();
  // A panel swapped in by htmx (after a tap) carries the server's state: start from it.
  document.addEventListener("htmx:load", function (event) {
    var el = event.target;
    if (el && el.id === "grab-panel") state = el.getAttribute("data-state");
  });
})();
