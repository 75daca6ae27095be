// The host console of a draw (templates/draws/_console.html): the entrant count follows the
// draw's status (static/js/follow.js: its stream, or polling /api/v1/draws/{slug} when there is
// none), and the console part loads again when the state changes elsewhere (another host, the
// schedule) — never while a question is on screen.
(function () {
  "use strict";
  if (!window.leadkitHost) return;
  window.leadkitHost("draw-console", function (s, part) {
    window.leadkitEach("[data-entrants]", function (n) { n.textContent = s.entrants; }, part);
    return s.state !== part.getAttribute("data-state") && !part.querySelector(".draw-confirm");
  });
})();
