/* The exception screens' few lines of script: the inbox's drawer (focus in on open, Escape and the
   close button close it, focus goes back to the row that opened it) and "select all" for bulk actions.
   Without JavaScript every row link opens the exception's own page and nothing here is needed. */
(function () {
  "use strict";
  if (window.ledgerlineExceptions) return; // htmx may run this file again when it swaps a page in
  window.ledgerlineExceptions = true;

  var opener = null; // the row link that opened the drawer
  var listUrl = null; // the inbox's address before the drawer pushed the exception's

  function drawer() {
    return document.getElementById("drawer");
  }

  function isOpen() {
    var d = drawer();
    return !!(d && d.firstElementChild);
  }

  function inboxUrl() {
    var results = document.getElementById("results");
    return listUrl || (results && results.getAttribute("hx-get")) || null;
  }

  function closeDrawer() {
    var d = drawer();
    if (!isOpen()) return;
    var panel = d.querySelector("[data-exception-url]");
    var url = panel ? panel.getAttribute("data-exception-url") : null;
    d.innerHTML = "";
    d.removeAttribute("data-open");
    var back = inboxUrl();
    if (back && url && location.pathname === url) {
      // the address names the inbox again, so a reload or Back shows what is on the screen
      history.replaceState({ htmx: true }, "", back);
    }
    var target = opener && document.body.contains(opener) ? opener : null;
    if (!target && url) target = document.querySelector('#results a[href="' + url + '"]');
    opener = null;
    listUrl = null;
    if (target) target.focus();
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var d = drawer();
    if (!d || event.detail.target !== d) return;
    opener = event.detail.elt;
    if (!isOpen()) listUrl = location.pathname + location.search;
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var d = drawer();
    if (d && event.detail.target === d && isOpen()) {
      d.setAttribute("data-open", "true");
      var heading = d.querySelector("#exception-heading");
      if (heading) heading.focus();
      return;
    }
    // An action answered a new panel: the button that had focus is gone, so focus its heading
    // rather than leave the keyboard at the top of the page.
    var lost = !document.activeElement || document.activeElement === document.body;
    var panel = document.getElementById("exception-panel");
    if (lost && panel && panel.contains(event.target)) {
      var title = panel.querySelector("#exception-heading");
      if (title) title.focus({ preventScroll: true });
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-drawer-close]")) {
      event.preventDefault();
      closeDrawer();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !event.defaultPrevented && isOpen()) {
      event.preventDefault();
      closeDrawer();
    }
  });

  // Where htmx keeps snapshots for Back, a snapshot is the markup: write what the filters show now into
  // it, or Back would bring the filtered rows under a form that shows the old choices.
  document.addEventListener("htmx:beforeHistorySave", function () {
    document.querySelectorAll("#inbox-filters select, #inbox-filters input").forEach(function (field) {
      if (field.tagName === "SELECT") {
        Array.prototype.forEach.call(field.options, function (option) {
          option.toggleAttribute("selected", option.selected);
        });
      } else if (field.type === "checkbox" || field.type === "radio") {
        field.toggleAttribute("checked", field.checked);
      } else if (field.type !== "hidden") {
        field.setAttribute("value", field.value);
      }
    });
  });

  document.addEventListener("change", function (event) {
    var all = event.target.closest && event.target.closest("[data-select-all]");
    if (!all) return;
    var table = all.closest("table");
    table.querySelectorAll("input[name=ids]:not(:disabled)").forEach(function (box) {
      box.checked = all.checked;
    });
  });
})();
