// Keyboard access to what Quasar makes scrollable (every page loads this, ui/frame.py): a
// table's body scrolls in a div it creates without a tabindex, so with the keyboard alone its
// hidden part could not be reached (axe-core: scrollable-region-focusable,
// tests/test_ui_a11y.py). Each such div becomes a tab stop, named after its table.
(() => {
  const mark = () => {
    for (const el of document.querySelectorAll(".q-table__middle.scroll:not([tabindex])")) {
      el.tabIndex = 0;
      el.setAttribute("role", "region");
      el.setAttribute("aria-label", "table (scrolls)");
    }
    // Quasar's loading bar (shown while the page waits for the app) is a progressbar with
    // no name (axe-core: aria-progressbar-name).
    for (const el of document.querySelectorAll(".q-loading-bar:not([aria-label])")) {
      el.setAttribute("aria-label", "loading");
    }
  };
  new MutationObserver(mark).observe(document.body, { childList: true, subtree: true });
  mark();
})();
