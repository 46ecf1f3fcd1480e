// Loaded between require.js and the ipywidgets embed manager (see nb_ipywidgets_js in _config.yml), on pages
// that show widgets. Two adjustments make the widgets render from the site's own files.
(function () {
  // This file is served from _static/; the embed manager sits in _static/vendor/html-manager/.
  var staticRoot = document.currentScript.src.replace(/[^/]*$/, "");

  // The embed manager finds its icon fonts next to where RequireJS thinks its module lives: tell RequireJS.
  require.config({
    paths: { "@jupyter-widgets/html-manager/dist": staticRoot + "vendor/html-manager" },
  });

  // Widgets typeset their LaTeX labels with the MathJax 2 call MathJax.Hub.Queue; the book loads MathJax 3.
  // Forward the call once MathJax 3 has loaded (a deferred script, so before DOMContentLoaded).
  document.addEventListener("DOMContentLoaded", function () {
    var mathjax = window.MathJax;
    if (!mathjax || mathjax.Hub || !mathjax.startup) return;  // no MathJax 3 on this page
    mathjax.Hub = {
      Queue: function (job) {
        var element = job[2];
        mathjax.startup.promise.then(function () {
          return mathjax.typesetPromise([element]);
        });
      },
    };
  });
})();
