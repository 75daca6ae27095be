// The brand page: the chosen logo's file name beside our own "choose" button (the browser's
// file button is hidden: it speaks the browser's language, not the page's).
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.classList || !input.classList.contains("file-input")) return;
    var name = input.closest(".file-pick").querySelector(".file-name");
    name.textContent = input.files && input.files.length ? input.files[0].name : name.getAttribute("data-empty");
  });
})();
