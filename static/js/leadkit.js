// leadkit page glue. No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  document.addEventListener("htmx:configRequest", function (event) {
    if (meta && meta.content) event.detail.headers["x-csrftoken"] = meta.content;
  });
  // Forms that ask before they act: <form data-confirm="...">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);
  // Client-side funnel steps (docs/events.md).
  function report(item, tool) {
    var body = JSON.stringify({ events: [{ event: item, tool: tool || "" }] });
    try {
      fetch("/api/v1/events", { method: "POST", body: body, keepalive: true, credentials: "same-origin",
        headers: { "content-type": "application/json" } });
    } catch (e) { /* tracking never breaks the page */ }
  }
  // A tap: <a data-event="cta_clicked" data-tool="slug" data-cta="...">.
  document.addEventListener("click", function (event) {
    var el = event.target && event.target.closest && event.target.closest("[data-event]");
    if (!el) return;
    var item = { name: el.getAttribute("data-event") };
    ["step", "target", "cta", "item"].forEach(function (key) {
      var value = el.getAttribute("data-" + key);
      if (value) item[key] = value;
    });
    report(item, el.getAttribute("data-tool"));
  });
  // A step the visitor starts by answering: <form data-step-started="inputs" data-tool="slug">
  // reports step_started at the first answer typed or chosen (or at a submit without one),
  // once per step and page: htmx swaps the form back in after each submit.
  var started = {};
  function stepStarted(event) {
    var form = event.target && event.target.closest && event.target.closest("form[data-step-started]");
    if (!form) return;
    var step = form.getAttribute("data-step-started");
    var tool = form.getAttribute("data-tool") || "";
    if (started[tool + " " + step]) return;
    started[tool + " " + step] = true;
    report({ name: "step_started", step: step }, tool);
  }
  ["input", "change", "submit"].forEach(function (type) {
    document.addEventListener(type, stepStarted, true);
  });
  // After a form's answer is swapped in, bring the place it lands on into view: the marker
  // <span data-land> sits before the result, or in the first field the server refused (whose
  // input then takes the focus, the visitor's value still in it). A plain post gets there
  // through the #land in the form's action.
  document.addEventListener("htmx:afterSettle", function (event) {
    var root = event.detail && event.detail.elt;
    var land = root && root.querySelector && root.querySelector("[data-land]");
    if (!land) return;
    var field = land.closest(".field");
    // A refused field in the middle of the screen, with its label above and its message below.
    if (field) field.scrollIntoView({ block: "center" });
    else (land.nextElementSibling || land).scrollIntoView({ block: "start" });
    var input = field && field.querySelector("input, select, textarea");
    if (input) input.focus({ preventScroll: true });
  });
  // The gate answers a verified code with HX-Redirect to the page it is on plus where to land
  // (/t/slug#result). Setting location.href would only move to the fragment of the page as it
  // is, without the result the code unlocked: load the page again and land there instead.
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    var xhr = event.detail && event.detail.xhr;
    var to = xhr && xhr.getResponseHeader("HX-Redirect");
    if (!to) return;
    var url = new URL(to, window.location.href);
    var here = window.location;
    if (!url.hash || url.origin !== here.origin || url.pathname !== here.pathname ||
        url.search !== here.search) return;
    event.preventDefault();
    try { sessionStorage.setItem("leadkit:land", url.hash); } catch (e) { /* private mode */ }
    if ("scrollRestoration" in history) history.scrollRestoration = "manual";
    history.replaceState(history.state, "", url.href);
    window.location.reload();
  });
  function landAfterReload() {
    var hash = null;
    try { hash = sessionStorage.getItem("leadkit:land"); sessionStorage.removeItem("leadkit:land"); } catch (e) { return; }
    if (!hash || hash !== window.location.hash) return;
    var target = document.getElementById(hash.slice(1));
    if (target) target.scrollIntoView({ block: "start" });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", landAfterReload);
  else landAfterReload();
})();
