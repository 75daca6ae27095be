// The proof of work the gate asks for once a network or the global rate looks abusive
// (app/gate/pow.py). The widget is ALTCHA's external build, vendored: it injects no style or
// worker of its own, so it runs within the CSP. This file loads it once (a partial swapped in
// again by htmx must not define the element twice), registers the PBKDF2 worker from /static
// and the widget's texts from the page's catalog, and keeps "Get code" disabled until the
// proof is found.
(function () {
  "use strict";
  if (window.leadkitPow) {
    window.leadkitPow.scan(document);
    return;
  }
  var ALGORITHMS = ["PBKDF2/SHA-256"];
  var loading = false;

  function hold(widget) {
    var form = widget.closest("form");
    var button = form && form.querySelector("button[type=submit]");
    if (!button) return;
    if (!button.dataset.counting) button.disabled = true;
    widget.addEventListener("statechange", function (event) {
      var state = event.detail && event.detail.state;
      // A failed or expired check lets the visitor ask anyway: the server then sends a new one.
      if (state === "verified" || state === "error" || state === "expired") {
        if (!button.dataset.counting) button.disabled = false;
      }
    });
  }

  function configure(widget) {
    if (widget.hasAttribute("data-ready")) return;
    var registry = window.$altcha;
    var worker = widget.getAttribute("data-worker");
    ALGORITHMS.forEach(function (name) {
      registry.algorithms.set(name, function () { return new Worker(worker); });
    });
    try {
      registry.i18n.set(widget.getAttribute("language"),
        JSON.parse(widget.getAttribute("data-strings") || "{}"));
    } catch (e) { /* the widget keeps its own texts */ }
    widget.setAttribute("data-ready", "");
    hold(widget);
  }

  function scan(root) {
    var widgets = root.querySelectorAll("altcha-widget");
    if (!widgets.length) return;
    if (window.customElements.get("altcha-widget")) {
      widgets.forEach(configure);
      return;
    }
    if (!loading) {
      loading = true;
      var script = document.createElement("script");
      script.src = widgets[0].getAttribute("data-src");
      document.head.appendChild(script);
    }
    window.customElements.whenDefined("altcha-widget").then(function () {
      document.querySelectorAll("altcha-widget").forEach(configure);
    });
  }

  window.leadkitPow = { scan: scan };
  scan(document);
})();
