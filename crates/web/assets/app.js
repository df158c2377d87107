// Tollgate's one script: small enhancements to pages that work without it.
// Copy buttons, tabs (switching without a reload, arrow keys), confirmations, chart
// tooltips (pointer and arrow keys), and adding a function row to the version form.
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
      if (!button.hasAttribute("data-label")) button.setAttribute("data-label", button.textContent);
      button.textContent = "Copied";
      button.setAttribute("data-copied", "");
      clearTimeout(button.copyTimer);
      button.copyTimer = setTimeout(function () {
        button.textContent = button.getAttribute("data-label");
        button.removeAttribute("data-copied");
      }, 1500);
    };
    var fallback = function () {
      var area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      try { if (document.execCommand("copy")) done(); } catch (e) { /* nothing to do */ }
      document.body.removeChild(area);
      button.focus();
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else {
      fallback();
    }
  });
  document.querySelectorAll("[data-copy]").forEach(function (b) { b.hidden = false; });

  // Tabs: <ul role="tablist" data-tabs> of <a role="tab" data-tab="name" href="?tab=name">,
  // every panel [data-panel="name"] on the page. A click shows its panel in place; the
  // tab list is one stop of the Tab key (the selected tab), and the arrow keys, Home and
  // End move between tabs and show their panels (the ARIA tabs pattern).
  document.querySelectorAll("[data-tabs]").forEach(function (list) {
    var tabs = Array.prototype.slice.call(list.querySelectorAll("[data-tab]"));
    function select(link, focus) {
      var panel = document.querySelector('[data-panel="' + link.getAttribute("data-tab") + '"]');
      if (!panel) return false;
      document.querySelectorAll("[data-panel]").forEach(function (p) { p.hidden = p !== panel; });
      tabs.forEach(function (a) {
        a.setAttribute("aria-selected", a === link ? "true" : "false");
        a.setAttribute("tabindex", a === link ? "0" : "-1");
      });
      if (focus) link.focus();
      history.replaceState(null, "", link.getAttribute("href"));
      return true;
    }
    tabs.forEach(function (a) {
      a.setAttribute("tabindex", a.getAttribute("aria-selected") === "true" ? "0" : "-1");
    });
    if (!tabs.some(function (a) { return a.getAttribute("tabindex") === "0"; }) && tabs.length) {
      tabs[0].setAttribute("tabindex", "0");
    }
    list.addEventListener("click", function (event) {
      var link = event.target.closest("[data-tab]");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
      if (select(link, false)) event.preventDefault();
    });
    list.addEventListener("keydown", function (event) {
      var at = tabs.indexOf(document.activeElement);
      if (at < 0) return;
      var to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      select(tabs[(to + tabs.length) % tabs.length], true);
    });
  });

  // Confirmations: <form data-confirm="Question?">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
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

  // Chart tooltips from data-tip: on hover, and from the keyboard inside a focused chart
  // (one Tab stop: the <svg>), where the arrow keys, Home and End step through its points.
  var tip = null;
  function show(target) {
    var box = target.closest(".chart-box");
    if (!box) return;
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "tooltip";
      tip.setAttribute("role", "status");
      tip.setAttribute("data-testid", "chart-tooltip");
    }
    box.appendChild(tip);
    tip.textContent = target.getAttribute("data-tip");
    var r = target.getBoundingClientRect(), b = box.getBoundingClientRect();
    tip.style.left = (r.left - b.left + r.width / 2) + "px";
    tip.style.top = (r.top - b.top) + "px";
    tip.hidden = false;
  }
  function hide() { if (tip) tip.hidden = true; }
  document.querySelectorAll("svg.chart").forEach(function (chart) {
    var points = Array.prototype.slice.call(chart.querySelectorAll("[data-tip]"));
    points.forEach(function (el) {
      el.addEventListener("mouseenter", function () { show(el); });
      el.addEventListener("mouseleave", hide);
    });
    if (!points.length) return;
    var at = -1;
    function mark(i) {
      if (points[at]) points[at].classList.remove("active");
      at = i;
      points[at].classList.add("active");
      show(points[at]);
    }
    chart.addEventListener("keydown", function (event) {
      var last = points.length - 1;
      var to = {
        ArrowRight: at < 0 ? 0 : Math.min(at + 1, last),
        ArrowDown: at < 0 ? 0 : Math.min(at + 1, last),
        ArrowLeft: at < 0 ? last : Math.max(at - 1, 0),
        ArrowUp: at < 0 ? last : Math.max(at - 1, 0),
        Home: 0,
        End: last,
      }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      mark(to);
    });
    chart.addEventListener("blur", function () {
      if (points[at]) points[at].classList.remove("active");
      at = -1;
      hide();
    });
  });
})();
