// The host console's grab page (templates/grabs/_host.html): the stock and the state follow the
// grab's status (static/js/follow.js: the stream, polling when it fails or the server's streams
// are full), the countdown ticks, and the page part loads again (with the actions of the new
// state) whenever the state changes or a countdown ends.
(function () {
  "use strict";
  var root = document.getElementById("grab-host");
  if (!root || !window.leadkitFollow) return;
  var hostUrl = root.getAttribute("data-host-url");
  var deadline = null;
  var reloading = false;

  function host() { return document.getElementById("grab-host"); }

  // The server's "seconds to go", not the phone's clock, which may be off by minutes.
  function readCountdown() {
    var el = document.querySelector("[data-host-countdown]");
    var seconds = el ? parseInt(el.getAttribute("data-host-countdown"), 10) : NaN;
    deadline = seconds >= 0 ? Date.now() + seconds * 1000 : null;
  }

  function reload() {
    if (reloading || !window.htmx) return;
    reloading = true;
    window.htmx.ajax("GET", hostUrl, { target: "#grab-host", swap: "outerHTML" }).then(
      function () { reloading = false; }, function () { reloading = false; });
  }

  function apply(s) {
    var current = host();
    if (!current) return;
    Array.prototype.forEach.call(current.querySelectorAll("[data-stock-left]"), function (el) {
      el.textContent = s.stock_left;
    });
    Array.prototype.forEach.call(current.querySelectorAll("[data-stock-total]"), function (el) {
      el.textContent = s.stock_total;
    });
    var bar = current.querySelector("[data-stock-bar]");
    if (bar) { bar.max = s.stock_total || 1; bar.value = s.stock_left; }
    if (s.state !== current.getAttribute("data-state")) reload();
  }

  function tick() {
    if (deadline === null) return;
    var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    var el = document.querySelector("[data-host-countdown]");
    if (el) el.textContent = window.leadkitClock(left);
    if (left === 0) { deadline = null; window.setTimeout(reload, 1000); }
  }

  window.leadkitFollow(root.getAttribute("data-status-url"), root.getAttribute("data-events-url"), apply);
  readCountdown();
  tick();
  window.setInterval(tick, 250);
  // The part swapped in (after an action or a reload) carries the server's new countdown.
  document.addEventListener("htmx:load", function (event) {
    if (event.target && event.target.id === "grab-host") readCountdown();
  });
})();
