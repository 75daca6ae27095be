// The host console of a draw (templates/draws/_console.html): the entrant count follows the
// draw's status (static/js/follow.js: its stream, or polling /api/v1/draws/{slug} when there is
// none), and the console part loads again when the state changes elsewhere (another host, the
// schedule) — never while a question is on screen.
(function () {
  "use strict";
  var root = document.getElementById("draw-console");
  if (!root || !window.leadkitFollow) return;
  var url = root.getAttribute("data-console-url");
  var reloading = false;

  function current() { return document.getElementById("draw-console"); }

  function reload() {
    if (reloading || !window.htmx) return;
    reloading = true;
    window.htmx.ajax("GET", url, { target: "#draw-console", swap: "outerHTML" }).then(
      function () { reloading = false; }, function () { reloading = false; });
  }

  function apply(s) {
    var el = current();
    if (!el) return;
    Array.prototype.forEach.call(el.querySelectorAll("[data-entrants]"), function (n) {
      n.textContent = s.entrants;
    });
    if (s.state !== el.getAttribute("data-state") && !el.querySelector(".draw-confirm")) reload();
  }

  window.leadkitFollow(root.getAttribute("data-status-url"), root.getAttribute("data-events-url"), apply);
})();
