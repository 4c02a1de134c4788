// The chart of a party's last periods: earnings as bars (frozen statements solid, live estimates light) and the
// score as a line on its own axis, drawn by uPlot (vendored with its licence under /static/vendor/uplot/).

import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { grouped, period } from "./format.js";

const HEIGHT = 260;
const NARROW = 560;

/** An x-axis label: the month (or quarter), with its year under the first one and under each January. */
function tick(points, index) {
  if (!points[index]) return "";
  const [name, year] = period(points[index].period).split(" ");
  return index === 0 || name === "Jan" || name === "Q1" ? `${name}\n${year}` : name;
}

function width(element) {
  return Math.max(element.clientWidth, 280);
}

/**
 * Draw into `element`: `points` are `{period, earned, frozen, score}` oldest first, `earned` a number (the
 * party's total in `currency`) or null, `score` a number or null. Returns the element.
 */
export function historyChart(element, points, currency) {
  const xs = points.map((_, index) => index);
  const frozen = points.map((point) => (point.frozen ? point.earned : null));
  const live = points.map((point) => (point.frozen ? null : point.earned));
  const scores = points.map((point) => point.score);
  const bars = uPlot.paths.bars({ size: [0.6, 48], align: 0 });
  const money = (value) => (value === null || value === undefined ? "–" : `${grouped(value.toFixed(2))} ${currency}`);
  const options = {
    width: width(element),
    height: HEIGHT,
    scales: { x: { time: false, range: [-0.5, points.length - 0.5] }, score: { range: [0, 150] } },
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    axes: [
      { splits: () => xs, size: 44, gap: 4, // on a phone, every other month
        values: (plot, splits) => splits.map((i) => (plot.width < NARROW && i % 2 ? "" : tick(points, i))) },
      { values: (_, splits) => splits.map((value) => grouped(String(value))), size: 72 },
      { scale: "score", side: 1, grid: { show: false }, values: (_, splits) => splits.map(String), size: 40 },
    ],
    series: [
      { label: "Period", value: (_, i) => (i === null || !points[i] ? "–" : period(points[i].period)) },
      { label: `Frozen (${currency})`, fill: "#2f6db3", stroke: "#2f6db3", paths: bars, points: { show: false },
        value: (_, v) => money(v) },
      { label: `Live (${currency})`, fill: "#9cc0ea", stroke: "#6a9fd8", paths: bars, points: { show: false },
        value: (_, v) => money(v) },
      { label: "Score", scale: "score", stroke: "#d9822b", width: 2, points: { size: 6 },
        show: scores.some((value) => value !== null),
        value: (_, v) => (v === null || v === undefined ? "–" : v.toFixed(2)) },
    ],
  };
  const plot = new uPlot(options, [xs, frozen, live, scores], element);
  const observer = new ResizeObserver(() => {
    if (element.isConnected) {
      plot.setSize({ width: width(element), height: HEIGHT });
    } else { // its section was redrawn: this chart is gone
      observer.disconnect();
      plot.destroy();
    }
  });
  observer.observe(element);
  return element;
}
