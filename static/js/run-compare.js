// The comparison page: "show differences only" on the parameter and metric tables, every
// run's ROC curves overlaid (one trace per run and output, with a legend), the confusion
// matrices side by side (cards, drawn as on the run page), and a parallel-coordinates plot
// of the parameters that differ against the metric chosen above it.
import {
  CHANCE, drawCharts, layout, loadPlotly, newPlot, rocLayout, rocTrace,
} from "./visualizations.js";

const data = JSON.parse(document.getElementById("compare-data").textContent);

function differencesOnly() {
  const toggle = document.querySelector("[data-differences-only]");
  const apply = () => {
    for (const table of document.querySelectorAll("[data-compare-table]")) {
      const rows = [...table.querySelectorAll("tr[data-compare-row]")];
      for (const row of rows) row.hidden = toggle.checked && row.hasAttribute("data-same");
      const note = table.closest(".table-scroll").nextElementSibling;
      if (note?.hasAttribute("data-all-same")) {
        note.hidden = !(toggle.checked && rows.every((row) => row.hidden));
      }
    }
  };
  toggle?.addEventListener("change", apply);
  apply();
}

function overlayRocs() {
  const element = document.querySelector("[data-roc-overlay]");
  if (!element || !data.rocs.length) return null;
  const several = new Set(data.rocs.map((roc) => roc.run)).size < data.rocs.length;
  const traces = data.rocs.map((roc) => rocTrace(roc,
    `${roc.run}${several ? ` · ${roc.step}/${roc.name}` : ""} (AUC ${roc.auc.toFixed(3)})`));
  return newPlot(element, [CHANCE, ...traces], rocLayout({
    height: 420, showlegend: true, legend: { orientation: "h", y: -0.22 },
    margin: { l: 60, r: 16, t: 12, b: 110 },
  }));
}

function parallel() {
  const element = document.querySelector("[data-parallel-chart]");
  const select = document.querySelector("[data-parallel-metric]");
  if (!element || !select) return null;
  const draw = () => {
    const metric = data.metrics[select.value];
    const known = metric.filter((value) => value !== null);
    const dimensions = [
      ...data.dimensions.map((dimension) => (dimension.ticks
        ? { label: dimension.label, values: dimension.values,
          tickvals: dimension.ticks.map((_, index) => index), ticktext: dimension.ticks }
        : { label: dimension.label, values: dimension.values })),
      { label: select.value, values: metric.map((value) => (value === null ? NaN : value)) },
    ];
    const trace = {
      type: "parcoords", dimensions,
      line: known.length ? {
        color: metric.map((value) => (value === null ? Math.min(...known) : value)),
        colorscale: "Viridis", showscale: true, colorbar: { title: { text: select.value } },
      } : {},
      labelfont: { size: 12 }, tickfont: { size: 11 },
    };
    return window.Plotly.react(element, [trace], layout({ height: 380, margin: { l: 70, r: 70, t: 50, b: 24 } }),
      { responsive: true, displaylogo: false }).then(() => {
      element.dataset.drawn = "true";
      element.dataset.metric = select.value;
    });
  };
  select.addEventListener("change", draw);
  return draw();
}

async function start() {
  differencesOnly();
  const root = document.querySelector(".content") || document;
  if (!root.querySelector("[data-roc-overlay], [data-parallel-chart], [data-viz-chart]")) return;
  try {
    await loadPlotly();
  } catch (error) {
    for (const chart of document.querySelectorAll("[data-roc-overlay], [data-parallel-chart]")) {
      chart.textContent = `The chart could not be drawn (${error.message}).`;
    }
  }
  if (!window.Plotly) return;
  await Promise.all([overlayRocs(), parallel(), drawCharts(root)]);
}

start();
