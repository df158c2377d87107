// Tollgate's one script: small enhancements to pages that work without it.
// Copy buttons, tab switching without a reload, confirmations, chart tooltips,
// selects that submit on change, and adding a function row to the version form.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="element-id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value !== undefined && source.tagName === "INPUT" ? source.value : source.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      var area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
      document.body.removeChild(area);
    }
  });
  document.querySelectorAll("[data-copy]").forEach(function (b) { b.hidden = false; });

  // Tabs: <ul data-tabs> of <a data-tab="name" href="?tab=name">; panels [data-panel="name"].
  // Only tabs whose panel is on the page switch in place; the others are plain links.
  document.querySelectorAll("[data-tabs]").forEach(function (list) {
    list.addEventListener("click", function (event) {
      var link = event.target.closest("[data-tab]");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
      var name = link.getAttribute("data-tab");
      var panel = document.querySelector('[data-panel="' + name + '"]');
      if (!panel) return;
      event.preventDefault();
      document.querySelectorAll("[data-panel]").forEach(function (p) { p.hidden = p !== panel; });
      list.querySelectorAll("[data-tab]").forEach(function (a) {
        a.setAttribute("aria-selected", a === link ? "true" : "false");
      });
      history.replaceState(null, "", link.getAttribute("href"));
    });
  });

  // Confirmations: <form data-confirm="Question?">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // Selects that act at once: <select data-autosubmit> submits its form on change; the
  // form's [data-autosubmit-button] is then not needed.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    var button = select.form && select.form.querySelector("[data-autosubmit-button]");
    if (button) button.hidden = true;
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // "Add another function": copies the last [data-fn-row] in place (names f<i>_… and ids
  // fn-<i>-… renumbered, values cleared) instead of submitting for a longer form.
  document.querySelectorAll("[data-add-row]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      var form = button.form;
      var rows = form.querySelectorAll("[data-fn-row]");
      var count = form.querySelector("[data-row-count]");
      if (!rows.length || !count) return;
      event.preventDefault();
      var last = rows[rows.length - 1];
      var n = rows.length;
      var copy = last.cloneNode(true);
      copy.querySelectorAll("[name], [id], [for], [aria-describedby]").forEach(function (el) {
        ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
          var v = el.getAttribute(attr);
          if (v) el.setAttribute(attr, v.replace(/^f\d+_/, "f" + n + "_").replace(/fn-\d+-/g, "fn-" + n + "-"));
        });
        if (el.tagName === "INPUT") el.value = "";
        if (el.tagName === "SELECT") el.selectedIndex = 0;
        el.removeAttribute("aria-invalid");
      });
      copy.querySelectorAll(".error").forEach(function (e) { e.remove(); });
      var legend = copy.querySelector("legend");
      if (legend) legend.textContent = "Function " + (n + 1);
      last.parentNode.insertBefore(copy, last.nextSibling);
      count.value = String(n + 1);
      var first = copy.querySelector("input");
      if (first) first.focus();
    });
  });

  // Chart tooltips from data-tip, on hover and on keyboard focus.
  var tip = null;
  function show(target) {
    var box = target.closest(".chart-box");
    if (!box) return;
    if (!tip) { tip = document.createElement("div"); tip.className = "tooltip"; tip.setAttribute("role", "status"); }
    box.appendChild(tip);
    tip.textContent = target.getAttribute("data-tip");
    var r = target.getBoundingClientRect(), b = box.getBoundingClientRect();
    tip.style.left = (r.left - b.left + r.width / 2) + "px";
    tip.style.top = (r.top - b.top) + "px";
    tip.hidden = false;
  }
  function hide() { if (tip) tip.hidden = true; }
  document.querySelectorAll("svg.chart [data-tip]").forEach(function (el) {
    el.setAttribute("tabindex", "0");
    el.addEventListener("mouseenter", function () { show(el); });
    el.addEventListener("focus", function () { show(el); });
    el.addEventListener("mouseleave", hide);
    el.addEventListener("blur", hide);
  });
})();
