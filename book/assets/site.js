// Accessibility repairs for what the theme and the figures put on every page (checked by axe-core in
// browser_tests/): names that match what a control shows, plotly figures that the keyboard can reach, and names
// for the handles of widget sliders. Widgets and plotly figures appear after the page has loaded, so new elements
// are repaired as they arrive.
(function () {
  "use strict";

  // A button's accessible name must contain the text it shows (WCAG 2.5.3). The theme labels its search button
  // "Search" while it shows "Search Ctrl+K": let the button be named by what it shows. The colour-mode button shows
  // only icons, which are decoration: hide them (and their titles, which would be read as its text) and keep its
  // label; the button's own tooltip still says what it does.
  function repairTheme() {
    document.querySelectorAll("button.search-button-field[aria-label]").forEach(function (button) {
      if (button.textContent.trim()) button.removeAttribute("aria-label");
    });
    // Font Awesome may already have replaced an <i> by an <svg> that carries the title as a <title> element.
    var icons = ".theme-switch-button i, .theme-switch-button svg, .search-button-field i, .search-button-field svg";
    document.querySelectorAll(icons).forEach(function (icon) {
      icon.setAttribute("aria-hidden", "true");
      icon.removeAttribute("title");
      icon.removeAttribute("aria-labelledby");
      icon.querySelectorAll("title").forEach(function (title) { title.remove(); });
    });
    // The sidebar (the book's title and its table of contents) is a region of its own, so that nothing on the
    // page is outside a landmark.
    var sidebar = document.getElementById("pst-primary-sidebar");
    if (sidebar && !sidebar.hasAttribute("role")) {
      sidebar.setAttribute("role", "complementary");
      sidebar.setAttribute("aria-label", "Book contents");
    }
  }

  // A plotly figure is drawn in SVG that Tab skips: make the figure one stop, a figure named by its title (which
  // plotly draws a moment later). Not role="img": the figure holds controls of its own (the mode bar).
  function repairPlot(plot) {
    var title = plot.querySelector(".gtitle");
    plot.setAttribute("tabindex", "0");
    plot.setAttribute("role", "figure");
    plot.setAttribute("aria-label", (title && title.textContent.trim()) || "interactive figure");
  }

  // noUiSlider's handles (ipywidgets sliders) have the slider role but no name: use the widget's description.
  function repairSlider(handle) {
    if (handle.hasAttribute("aria-label") || handle.hasAttribute("aria-labelledby")) return;
    var widget = handle.closest(".widget-slider, .jupyter-widgets");
    var label = widget && widget.querySelector(".widget-label");
    handle.setAttribute("aria-label", (label && label.textContent.trim()) || "slider");
  }

  function repair(root) {
    root.querySelectorAll(".plotly-graph-div").forEach(repairPlot);
    root.querySelectorAll(".noUi-handle[role=slider]").forEach(repairSlider);
  }

  function start() {
    repairTheme();
    repair(document);
    new MutationObserver(function (mutations) {
      mutations.forEach(function (mutation) {
        mutation.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1) return;
          if (node.closest(".theme-switch-button, .search-button-field")) repairTheme();  // icons drawn late
          if (node.matches(".noUi-handle[role=slider]")) repairSlider(node);
          if (node.matches(".plotly-graph-div")) repairPlot(node);
          repair(node);
          if (node.closest(".plotly-graph-div")) repairPlot(node.closest(".plotly-graph-div"));
        });
      });
    }).observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
