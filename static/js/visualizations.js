// Charts of visualization cards (templates/pipelines/_visualization.html): ROC curves and
// confusion matrices, drawn with plotly.js from the JSON the server put beside each chart.
// plotly.js (static/vendor/, installed by `make vendor`, never a CDN) is large, so it is
// loaded the first time a page has a chart to draw. Cards without charts (tables,
// markdown, sandboxed HTML) need no script.

const PLOTLY_URL = new URL("../vendor/plotly.min.js", import.meta.url).href;
const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
let loading = null;

export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  loading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = PLOTLY_URL;
    script.onload = () => resolve(window.Plotly);
    script.onerror = () => {
      loading = null;
      reject(new Error("plotly.js did not load"));
    };
    document.head.append(script);
  });
  return loading;
}

// Colours from the page's own theme, so charts follow light and dark mode.
function theme() {
  const style = getComputedStyle(document.body);
  const value = (name) => style.getPropertyValue(name).trim();
  return { text: value("--text"), muted: value("--muted"), border: value("--border"), font: value("--font") };
}

export function layout(extra = {}) {
  const colours = theme();
  const axis = { gridcolor: colours.border, zerolinecolor: colours.border, linecolor: colours.border };
  return {
    margin: { l: 60, r: 16, t: 12, b: 48 }, height: 320,
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: colours.font, color: colours.text, size: 12 },
    hoverlabel: { font: { family: colours.font } },
    ...extra,
    xaxis: { ...axis, ...extra.xaxis }, yaxis: { ...axis, ...extra.yaxis },
  };
}

export function newPlot(element, traces, chartLayout) {
  return window.Plotly.newPlot(element, traces, chartLayout, CONFIG).then(() => {
    element.dataset.drawn = "true";
  });
}

// ---- ROC ---------------------------------------------------------------------------

export const CHANCE = {
  type: "scatter", mode: "lines", x: [0, 1], y: [0, 1], name: "chance",
  line: { dash: "dot", width: 1, color: "#8892a0" }, hoverinfo: "skip", showlegend: false,
};

export function rocTrace(data, name) {
  return {
    type: "scatter", mode: "lines", x: data.fpr, y: data.tpr, name,
    customdata: data.thresholds.map((t) => (t === null || t === undefined ? "–" : t)),
    hovertemplate: "FPR %{x:.3f}<br>TPR %{y:.3f}<br>threshold %{customdata}<extra>%{fullData.name}</extra>",
    line: { width: 2, shape: "linear" },
  };
}

export function rocLayout(extra = {}) {
  return layout({
    ...extra,
    xaxis: { title: { text: "False positive rate" }, range: [0, 1], constrain: "domain" },
    yaxis: { title: { text: "True positive rate" }, range: [0, 1.02] },
  });
}

function drawRoc(element, data) {
  return newPlot(element, [CHANCE, rocTrace(data, `AUC ${data.auc.toFixed(4)}`)],
    rocLayout({ showlegend: false }));
}

// ---- confusion matrix -----------------------------------------------------------------

export function matrixTrace(data, normalized) {
  const z = normalized
    ? data.matrix.map((row) => {
      const total = row.reduce((sum, value) => sum + value, 0);
      return row.map((value) => (total ? value / total : 0));
    })
    : data.matrix;
  return {
    type: "heatmap", x: data.labels, y: data.labels, z, colorscale: "Blues", reversescale: true,
    showscale: false,
    text: z.map((row) => row.map((value) => (normalized ? value.toFixed(2) : String(value)))),
    texttemplate: "%{text}", hovertemplate: "true %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
  };
}

export function matrixLayout(labels) {
  const height = Math.min(640, Math.max(260, 60 + labels.length * 42));
  return layout({
    height, margin: { l: 90, r: 16, t: 12, b: 70 },
    xaxis: { title: { text: "Predicted" }, type: "category", side: "bottom" },
    yaxis: { title: { text: "True" }, type: "category", autorange: "reversed" },
  });
}

function drawMatrix(element, data, card) {
  const toggle = card.querySelector("[data-viz-normalize]");
  const draw = () => window.Plotly.react(element, [matrixTrace(data, toggle?.checked)],
    matrixLayout(data.labels), CONFIG).then(() => {
    element.dataset.drawn = "true";
    element.dataset.normalized = String(Boolean(toggle?.checked));
  });
  toggle?.addEventListener("change", draw);
  return draw();
}

// ---- drawing a container's cards -------------------------------------------------------

const DRAW = { roc: drawRoc, confusion_matrix: drawMatrix };

// Draws every chart under ``root`` not drawn yet; a chart that cannot be drawn says so on
// its card (its numbers stay readable in the card's table).
export async function drawCharts(root = document) {
  const charts = [...root.querySelectorAll("[data-viz-chart]:not([data-drawn])")];
  if (!charts.length) return;
  try {
    await loadPlotly();
  } catch (error) {
    for (const chart of charts) failed(chart, error);
    return;
  }
  for (const chart of charts) {
    const card = chart.closest("[data-viz-card]");
    const source = card.querySelector('script[type="application/json"]');
    chart.dataset.drawn = "pending";
    try {
      await DRAW[chart.dataset.vizChart](chart, JSON.parse(source.textContent), card);
    } catch (error) {
      failed(chart, error);
    }
  }
}

function failed(chart, error) {
  chart.dataset.drawn = "failed";
  chart.textContent = `The chart could not be drawn (${error.message}).`;
  chart.classList.add("viz-error");
}

// Frees plotly's listeners before a container's content is replaced.
export function releaseCharts(root) {
  if (!window.Plotly) return;
  for (const chart of root.querySelectorAll("[data-viz-chart][data-drawn='true']")) window.Plotly.purge(chart);
}

// A page of cards alone (the run's outputs page) draws them at once.
if (document.querySelector("[data-run-outputs]") && !document.querySelector("[data-run-tabs]")) {
  drawCharts();
}
