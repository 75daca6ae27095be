// Calculator editor: put the live preview's problems beside the inputs they belong to.
// The preview (templates/editor/_preview.html) lists them as <li data-error-for="PATH">,
// where PATH is an input's name ("outputs.total.low") or a block's data-path ("fields.area").
(function () {
  "use strict";
  function target(path) {
    var parts = path.split(".");
    while (parts.length) {
      var name = parts.join(".");
      var input = document.getElementsByName(name)[0];
      if (input) return input;
      var block = document.querySelector('[data-path="' + CSS.escape(name) + '"]');
      if (block) return block.querySelector("legend") || block;
      parts.pop();
    }
    return null;
  }
  function annotate() {
    document.querySelectorAll(".js-inline-error").forEach(function (el) { el.remove(); });
    document.querySelectorAll("[data-js-invalid]").forEach(function (el) {
      el.removeAttribute("aria-invalid"); el.removeAttribute("data-js-invalid");
    });
    document.querySelectorAll("#preview [data-error-for]").forEach(function (item) {
      var el = target(item.getAttribute("data-error-for"));
      if (!el) return;
      if (el.matches("input, textarea, select")) {
        el.setAttribute("aria-invalid", "true"); el.setAttribute("data-js-invalid", "1");
        el = el.closest("label") || el;
      }
      var note = document.createElement("p");
      note.className = "field-error js-inline-error";
      note.textContent = item.getAttribute("data-message");
      el.insertAdjacentElement("afterend", note);
    });
  }
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "preview") annotate();
  });
})();
