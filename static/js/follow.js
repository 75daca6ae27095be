// Following a grab's or a draw's status, for the live pages (grab.js, draw.js) and the host
// consoles (host.js, draw-console.js): the server-sent "status" events, and polling at the
// server's pace when the stream fails or the server's streams are full ("poll" event). Loaded
// before the page's own script.
//   leadkitFollow(statusUrl, eventsUrl, apply) -> ask: apply(status) on every status;
//     ask() polls now (at most once a second).
//   leadkitClock(seconds) -> "h:mm:ss", or "mm:ss" under an hour.
//   leadkitEach(selector, fn[, scope]): fn(node) for each match in scope (the document).
//   leadkitShowWhen(state): shows the [data-when] nodes that list state, hides the others.
//   leadkitCountdown(selector, onZero) -> set: set(seconds) counts down from the server's
//     "seconds to go" (not the phone's clock, which may be off by minutes) in the selector's
//     nodes; null (or no number) stops it; onZero() on each tick at zero.
//   leadkitLive(root, selector, apply, scheduled): a visitor's live page (grab.js, draw.js):
//     apply(status) on every status of root's data-status-url / data-events-url, and the
//     countdown in the selector's nodes from root's data-starts-in, then each status's
//     starts_in; at zero, while scheduled(), it asks the server rather than assume (the host
//     may have changed the plan).
//   leadkitHost(id, update) -> reload (null without the part): the host console's part #id
//     (templates/_macros.html host) follows the status in its data-status-url and
//     data-events-url; update(status, part) changes it in place and returns true when the part
//     must load again (GET its data-reload-url, outerHTML); reload() loads it again (one load
//     at a time).
(function () {
  "use strict";
  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function each(selector, fn, scope) {
    Array.prototype.forEach.call((scope || document).querySelectorAll(selector), fn);
  }
  window.leadkitEach = each;

  window.leadkitShowWhen = function (state) {
    each("[data-when]", function (node) {
      node.hidden = node.getAttribute("data-when").split(" ").indexOf(state) < 0;
    });
  };

  window.leadkitCountdown = function (selector, onZero) {
    var deadline = null;
    function tick() {
      if (deadline === null) return;
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      var text = window.leadkitClock(left);
      each(selector, function (node) { node.textContent = text; });
      if (left === 0) onZero();
    }
    window.setInterval(tick, 250);
    return function set(seconds) {
      deadline = typeof seconds === "number" && seconds >= 0 ? Date.now() + seconds * 1000 : null;
      tick();
    };
  };

  window.leadkitLive = function (root, selector, apply, scheduled) {
    var ask = null;
    var countdown = window.leadkitCountdown(selector, function () {
      if (ask && scheduled()) ask();
    });
    ask = window.leadkitFollow(root.getAttribute("data-status-url"), root.getAttribute("data-events-url"),
      function (s) { apply(s); countdown(s.starts_in); });
    countdown(parseInt(root.getAttribute("data-starts-in"), 10));
  };

  window.leadkitHost = function (id, update) {
    var root = document.getElementById(id);
    if (!root) return null;
    var url = root.getAttribute("data-reload-url");
    var reloading = false;
    function reload() {
      if (reloading || !window.htmx) return;
      reloading = true;
      var done = function () { reloading = false; };
      window.htmx.ajax("GET", url, { target: "#" + id, swap: "outerHTML" }).then(done, done);
    }
    window.leadkitFollow(root.getAttribute("data-status-url"), root.getAttribute("data-events-url"),
      function (s) {
        var part = document.getElementById(id);
        if (part && update(s, part)) reload();
      });
    return reload;
  };

  window.leadkitClock = function (left) {
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), sec = left % 60;
    return (h ? h + ":" + pad(m) : pad(m)) + ":" + pad(sec);
  };

  window.leadkitFollow = function (statusUrl, eventsUrl, apply) {
    var polling = null;
    var pollEvery = 0;
    var pollSeconds = 3; // until the server says otherwise
    var lastPoll = 0;
    var reopen = null;

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
    return function ask() {
      if (Date.now() - lastPoll > 1000) poll();
    };
  };
})();
