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
})();
