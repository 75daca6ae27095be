// Grab page: live stock and state (server-sent events, polling when they fail or the server's
// streams are full), the countdown.
(function () {
  "use strict";
  var panel = document.getElementById("grab-panel");
  if (!panel) return;
  var statusUrl = panel.getAttribute("data-status-url");
  var eventsUrl = panel.getAttribute("data-events-url");
  var state = panel.getAttribute("data-state");
  var startsIn = parseInt(panel.getAttribute("data-starts-in"), 10);
  // The server's "seconds to go", not the phone's clock, which may be off by minutes.
  var deadline = startsIn >= 0 ? Date.now() + startsIn * 1000 : null;
  var polling = null;
  var pollEvery = 0;
  var pollSeconds = 3; // until the server says otherwise
  var lastPoll = 0;
  var reopen = null;

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

  function poll() {
    lastPoll = Date.now();
    if (!window.fetch) return;
    fetch(statusUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) apply(s); })
      .catch(function () { /* the next poll tries again */ });
  }

  function startPolling() {
    var every = pollSeconds * 1000;
    if (polling && pollEvery === every) return;
    stopPolling();
    pollEvery = every;
    polling = window.setInterval(poll, every);
  }

  function stopPolling() {
    if (polling) { window.clearInterval(polling); polling = null; }
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function tick() {
    if (deadline === null) return;
    var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), sec = left % 60;
    var text = (h ? h + ":" + pad(m) : pad(m)) + ":" + pad(sec);
    each("[data-grab-countdown]", function (el) { el.textContent = text; });
    // At zero, ask the server rather than assume: the host may have changed the plan.
    if (left === 0 && state === "scheduled" && Date.now() - lastPoll > 1000) poll();
  }

  window.setInterval(tick, 250);
  tick();
  function openStream() {
    reopen = null;
    var source = new EventSource(eventsUrl);
    source.addEventListener("status", function (event) {
      stopPolling(); // the stream delivers again
      try { apply(JSON.parse(event.data)); } catch (e) { /* ignore a bad message */ }
    });
    // The server's streams are full: poll at its pace; the browser itself opens the stream
    // again after the "retry" the same answer set.
    source.addEventListener("poll", function (event) {
      try {
        var hint = JSON.parse(event.data);
        if (hint.poll_seconds > 0) pollSeconds = hint.poll_seconds;
      } catch (e) { /* keep the current pace */ }
      startPolling();
    });
    source.onerror = function () {
      startPolling();
      // Refused for good (an error status, e.g. from a proxy): a new stream in about a minute.
      if (source.readyState === 2 && !reopen) {
        reopen = window.setTimeout(openStream, 45000 + Math.random() * 30000);
      }
    };
  }

  if (window.EventSource) {
    openStream();
  } else {
    startPolling();
  }
  // A panel swapped in by htmx (after a tap) carries the server's state: start from it.
  document.addEventListener("htmx:load", function (event) {
    var el = event.target;
    if (el && el.id === "grab-panel") state = el.getAttribute("data-state");
  });
})();
