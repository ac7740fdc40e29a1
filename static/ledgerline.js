/* Ledgerline's own few lines of script: the site menu behind a button on narrow screens.
   The button only appears once this runs, so without JavaScript the menu simply stays open. */
(function () {
  "use strict";

  function setUpMenu() {
    var button = document.querySelector(".menu-toggle");
    var menu = document.getElementById("site-menu");
    if (!button || !menu || button.dataset.ready) return;
    button.dataset.ready = "1";
    button.hidden = false;
    document.documentElement.classList.add("has-menu-toggle");

    function setOpen(open) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
      menu.classList.toggle("open", open);
    }

    button.addEventListener("click", function () {
      setOpen(button.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.classList.contains("open")) {
        setOpen(false);
        button.focus();
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUpMenu);
  } else {
    setUpMenu();
  }
})();
