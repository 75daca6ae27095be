// A draw's live pages: the visitor's page (/t/{slug}) and the big screen (/t/{slug}/screen).
// Follows the draw's status (static/js/follow.js: server-sent events, polling when they fail
// or the server's streams are full): the entrant count, the state, the countdown, the winners
// per tier; on the visitor's page, the panel is fetched again (/t/{slug}/panel) when the state
// changes or a tier is drawn, so an entered visitor sees "you won" without reloading.
(function () {
  "use strict";
  var root = document.getElementById("draw-panel") || document.getElementById("draw-screen");
  if (!root || !window.leadkitFollow) return;
  var state = root.getAttribute("data-state");
  var drawn = parseInt(root.getAttribute("data-drawn") || "0", 10);
  var refreshing = false;
  var again = false; // a change arrived while the panel was being fetched: fetch it once more
  var each = window.leadkitEach;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function phones(list, className) {
    var ul = el("ul", className);
    list.forEach(function (phone) { ul.appendChild(el("li", "", phone)); });
    return ul;
  }

  // The visitor's page: the drawn tiers' winners.
  function winners(s) {
    var box = document.querySelector("[data-winners]");
    var tiers = document.querySelector("[data-winner-tiers]");
    if (!box || !tiers) return;
    var undrawnText = box.getAttribute("data-undrawn-text") || "";
    var drawnTiers = s.tiers.filter(function (t) { return t.drawn; });
    box.hidden = drawnTiers.length === 0;
    tiers.textContent = "";
    drawnTiers.forEach(function (t) {
      var div = el("div", "draw-tier");
      div.appendChild(el("h3", "", t.name));
      div.appendChild(phones(t.winners, "draw-phones"));
      if (t.undrawn) div.appendChild(el("p", "muted small", undrawnText.replace("{n}", t.undrawn)));
      tiers.appendChild(div);
    });
  }

  // The big screen: every tier, its winners once drawn.
  function screenTiers(s) {
    var box = document.querySelector("[data-screen-tiers]");
    if (!box) return;
    var waiting = box.getAttribute("data-waiting-text") || "";
    s.tiers.forEach(function (t, i) {
      var tier = box.querySelector('[data-tier="' + (i + 1) + '"]');
      if (!tier) return;
      var old = tier.querySelector(".screen-phones, .screen-waiting");
      var fresh = t.drawn ? phones(t.winners, "screen-phones") : el("p", "screen-waiting", waiting);
      if (old) tier.replaceChild(fresh, old); else tier.appendChild(fresh);
      tier.classList.toggle("is-drawn", t.drawn);
    });
  }

  function refreshPanel() {
    var panel = document.getElementById("draw-panel");
    var url = panel && panel.getAttribute("data-refresh");
    if (!url) return;
    if (refreshing) { again = true; return; }
    refreshing = true;
    var done = function () {
      refreshing = false;
      if (again) { again = false; refreshPanel(); }
    };
    if (window.htmx) {
      window.htmx.ajax("GET", url, { target: "#draw-panel", swap: "outerHTML" }).then(done, done);
    } else {
      window.location.reload();
    }
  }

  function apply(s) {
    var nowDrawn = s.tiers.filter(function (t) { return t.drawn; }).length;
    var changed = s.state !== state || nowDrawn !== drawn;
    state = s.state;
    drawn = nowDrawn;
    each("[data-draw-count]", function (node) { node.textContent = s.entrants; });
    each("[data-state-label]", function (node) {
      try {
        var labels = JSON.parse(node.getAttribute("data-labels") || "{}");
        if (labels[s.state]) node.textContent = labels[s.state];
      } catch (e) { /* keep the label */ }
    });
    window.leadkitShowWhen(s.state);
    each("[data-state]", function (node) { node.setAttribute("data-state", s.state); });
    winners(s);
    screenTiers(s);
    if (changed) refreshPanel();
  }

  window.leadkitLive(root, "[data-draw-countdown]", apply, function () { return state === "scheduled"; });
})();
