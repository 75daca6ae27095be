// The voucher page's camera: the rear camera's frames go through the vendored jsQR until one
// holds a QR code; its text fills the code field and the look-up form is submitted.
(function () {
  "use strict";
  var stream = null;
  var canvas = document.createElement("canvas");
  var context = canvas.getContext("2d", { willReadFrequently: true });

  // One frame (a <video>, <img> or <canvas>) → the QR code's text, or null. The scanner loop
  // and the browser tests use this same function.
  function decode(source, width, height) {
    if (!width || !height || !window.jsQR) return null;
    // Large frames cost time on a phone; 640 px across is plenty for a code held up close.
    var scale = Math.min(1, 640 / Math.max(width, height));
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    context.drawImage(source, 0, 0, canvas.width, canvas.height);
    var image = context.getImageData(0, 0, canvas.width, canvas.height);
    var found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "attemptBoth" });
    return found && found.data ? found.data : null;
  }

  // A QR code may hold the bare code or a link ending in it (…/v/LK7K3M9QX2PF4H, …?code=…).
  function codeFrom(text) {
    var value = String(text).trim();
    var match = /[?&]code=([^&#]+)/.exec(value);
    if (match) return decodeURIComponent(match[1]);
    if (/^https?:\/\//i.test(value)) return value.replace(/[?#].*$/, "").replace(/\/+$/, "").split("/").pop();
    return value;
  }

  function el(id) { return document.getElementById(id); }

  function stop() {
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    var video = el("voucher-video");
    if (video) video.srcObject = null;
    var box = el("voucher-scanner");
    if (box) box.hidden = true;
  }

  function fail(kind) {
    stop();
    var box = el("voucher-scanner");
    var message = el("voucher-scan-error");
    if (!box || !message) return;
    box.hidden = false;
    message.textContent = message.getAttribute("data-" + kind);
    message.hidden = false;
    el("voucher-video").hidden = true;
    el("voucher-scan-hint").hidden = true;
  }

  function found(text) {
    stop();
    var input = el("voucher-code");
    var form = el("voucher-form");
    if (!input || !form) return;
    input.value = codeFrom(text);
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  function scanLoop(video) {
    if (!stream) return;
    if (video.readyState >= 2) {
      var text = decode(video, video.videoWidth, video.videoHeight);
      if (text) { found(text); return; }
    }
    window.requestAnimationFrame(function () { scanLoop(video); });
  }

  function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.jsQR) {
      fail("unsupported");
      return;
    }
    var box = el("voucher-scanner");
    var video = el("voucher-video");
    el("voucher-scan-error").hidden = true;
    el("voucher-scan-hint").hidden = false;
    video.hidden = false;
    box.hidden = false;
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        video.setAttribute("playsinline", "");
        return video.play().then(function () { scanLoop(video); });
      })
      .catch(function () { fail("denied"); });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target || !target.closest) return;
    if (target.closest("#voucher-scan")) { event.preventDefault(); start(); }
    else if (target.closest("#voucher-scan-stop")) { event.preventDefault(); stop(); }
  });
  // A new look-up form after a swap: keep the cursor in the code field for the next voucher.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target && event.target.id === "voucher-panel") {
      var input = el("voucher-code");
      if (input && !el("voucher-confirm")) input.focus();
    }
  });
  window.leadkitVouchers = { decode: decode, codeFrom: codeFrom, stop: stop };
})();
