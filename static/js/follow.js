// Following a grab's status, for the visitor's grab page (grab.js) and the host console
// (host.js): the server-sent "status" events, and polling at the server's pace when the stream
// fails or the server's streams are full ("poll" event). Loaded before the page's own script.
//   leadkitFollow(statusUrl, eventsUrl, apply) -> ask: apply(status) on every status;
//     ask() polls now (at most once a second).
//   leadkitClock(seconds) -> "h:mm:ss", or "mm:ss" under an hour.
(function () {
  "use strict";
  function pad(n) { return n < 10 ? "0" + n : String(n); }

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
