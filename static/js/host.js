// The host console's grab page (templates/grabs/_host.html): the stock and the state follow the
// grab's status (static/js/follow.js: the stream, polling when it fails or the server's streams
// are full), the countdown ticks, and the page part loads again (with the actions of the new
// state) whenever the state changes or a countdown ends.
(function () {
  "use strict";
  if (!window.leadkitHost) return;
  var each = window.leadkitEach;
  var reload = window.leadkitHost("grab-host", function (s, part) {
    each("[data-stock-left]", function (el) { el.textContent = s.stock_left; }, part);
    each("[data-stock-total]", function (el) { el.textContent = s.stock_total; }, part);
    var bar = part.querySelector("[data-stock-bar]");
    if (bar) { bar.max = s.stock_total || 1; bar.value = s.stock_left; }
    return s.state !== part.getAttribute("data-state");
  });
  if (!reload) return;
  var countdown = window.leadkitCountdown("[data-host-countdown]", function () {
    countdown(null);
    window.setTimeout(reload, 1000);
  });

  // The server's "seconds to go", in the part's countdown (none: no countdown).
  function readCountdown() {
    var el = document.querySelector("[data-host-countdown]");
    countdown(el ? parseInt(el.getAttribute("data-host-countdown"), 10) : NaN);
  }

  readCountdown();
  // The part swapped in (after an action or a reload) carries the server's new countdown.
  document.addEventListener("htmx:load", function (event) {
    if (event.target && event.target.id === "grab-host") readCountdown();
  });
})();
