// Countdown on "send code" buttons: <button data-countdown="60">. Works after htmx swaps too.
(function () {
  "use strict";
  function start(button) {
    if (button.dataset.counting) return;
    var left = parseInt(button.dataset.countdown, 10);
    if (!(left > 0)) return;
    button.dataset.counting = "1";
    var label = button.textContent;
    button.disabled = true;
    var tick = function () {
      if (left <= 0) {
        button.disabled = false;
        button.textContent = label;
        delete button.dataset.counting;
        return;
      }
      button.textContent = label + " (" + left + "s)";
      left -= 1;
      window.setTimeout(tick, 1000);
    };
    tick();
  }
  function scan(root) {
    (root || document).querySelectorAll("[data-countdown]").forEach(start);
  }
  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:load", function (event) { scan(event.target); });
})();
