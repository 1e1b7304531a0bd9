// Draws the overview charts from the figure dicts the server built with Plotly (see
// attribution/costs/overview.py). No data is computed here: the page only renders what it was given.
(function () {
  "use strict";

  var source = document.getElementById("figures");
  if (!source || typeof Plotly === "undefined") {
    return;
  }
  var figures = JSON.parse(source.textContent);
  var config = {
    responsive: true,
    displaylogo: false,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  };

  document.querySelectorAll("[data-figure]").forEach(function (element) {
    var figure = figures[element.dataset.figure];
    if (!figure) {
      return;
    }
    if (!figure.data || figure.data.length === 0) {
      element.classList.add("chart--empty");
      element.textContent = "No data for these filters.";
      return;
    }
    Plotly.newPlot(element, figure.data, figure.layout, config).then(function () {
      // A point whose series (trace meta) or bar (customdata) carries an explorer URL, set by
      // the overview view, opens it.
      element.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        var meta = point && point.data && point.data.meta;
        var url = (meta && meta.explorer_url) || (point && point.customdata);
        if (typeof url === "string" && url.indexOf("/explorer/") === 0) {
          window.location.assign(url);
        }
      });
    });
  });
})();
