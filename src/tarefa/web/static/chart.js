// Bar charts of jobs over time for tarefa's dashboard, as SVG text: the views
// return HTML strings, so a chart is one more string in them. Loaded before
// app.js; chart() uses app.js's esc(), which exists by the time a view runs.
"use strict";

// Drawing units (the SVG's viewBox); CSS scales the whole chart to the page.
// Its width follows the page's (chartWidth), so that at a phone's width the
// text is not scaled down to nothing.
const CHART = { height: 200, left: 44, right: 10, top: 26, bottom: 22 };
const chartWidth = () =>
  Math.max(320, Math.min(1000, document.getElementById("view").clientWidth - 40));
const MINUTE_MS = 60_000;

// Counts may be fractional (the API spreads a gap in its history over the
// minutes it spans): one decimal for small numbers, whole numbers otherwise.
const rounded = (n) => String(n >= 10 ? Math.round(n) : Math.round(n * 10) / 10);

// "05:47" of an ISO time plus `minutes` minutes, on the reader's clock
// (times.js), and in UTC.
const at = (iso, minutes) => new Date(Date.parse(iso) + minutes * MINUTE_MS);
const clock = (iso, minutes = 0) => localClock(at(iso, minutes), { seconds: false });
const utcClock = (iso, minutes = 0) => at(iso, minutes).toISOString().slice(11, 16);

// The smallest of 1, 2, 5, 10, 20, 50, ... that is >= n: a round axis maximum.
function roundUp(n) {
  const power = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= n);
}

// Sums per-minute points into bars of `size` minutes, aligned on the clock
// (10-minute bars start at :00, :10, ...), so a day fits in a readable chart.
// Each bar keeps its start time and how many minutes it covers.
function perBars(points, size) {
  const bars = new Map();
  for (const point of points) {
    const slot = Math.floor(Date.parse(point.time) / MINUTE_MS / size);
    const bar = bars.get(slot);
    if (!bar) {
      bars.set(slot, { ...point, minutes: 1 });
      continue;
    }
    bar.minutes += 1;
    for (const [key, value] of Object.entries(point)) {
      if (typeof value === "number") bar[key] += value;
    }
  }
  return [...bars.values()];
}

// One bar per point, its series stacked (each attempt a worker ran ends as
// one of completed, failed or retried, so the stack is "attempts ended").
// `points`: oldest first, {time: ISO minute start, minutes?, [series]: count}.
// `series`: the names of the counts to draw, bottom first; CSS colours them
// through the classes series-<name>.
function chart(points, series) {
  const stack = (point) => series.reduce((sum, name) => sum + point[name], 0);
  const highest = Math.max(0, ...points.map(stack));
  if (highest === 0) return '<p class="chart-empty">No jobs in this period.</p>';

  const { height, left, right, top, bottom } = CHART;
  const width = chartWidth();
  const base = height - bottom; // the y of zero
  const yMax = roundUp(highest);
  const scale = (base - top) / yMax;
  const step = (width - left - right) / points.length;
  const gap = step > 4 ? 1 : 0; // thin bars touch; wide ones get a gap
  const x = (i) => (left + i * step).toFixed(2);

  const bars = points.map((point, i) => {
    let y = base;
    const rects = series.filter((name) => point[name] > 0).map((name) => {
      const h = point[name] * scale;
      y -= h;
      return `<rect class="bar series-${esc(name)}" data-series="${esc(name)}"
        data-value="${Math.round(point[name] * 10) / 10}" x="${x(i)}" y="${y.toFixed(2)}"
        width="${(step - gap).toFixed(2)}" height="${h.toFixed(2)}"/>`;
    }).join("");
    const minutes = point.minutes || 1;
    const span = (show) => (minutes > 1 ? `${show(point.time)}–${show(point.time, minutes - 1)}`
      : show(point.time));
    const title = `${dayOf(new Date(point.time))} ${span(clock)} local (${span(utcClock)} UTC): ` +
      series.map((name) => `${rounded(point[name])} ${name}`).join(", ");
    // The invisible full-height rect makes the whole column show the title.
    return `<g class="point" data-time="${esc(point.time)}"><title>${esc(title)}</title>
      <rect class="hover" x="${x(i)}" y="${top}" width="${step.toFixed(2)}" height="${base - top}"/>
      ${rects}</g>`;
  }).join("");

  const gridline = (value) => {
    const y = (base - value * scale).toFixed(2);
    return `<line class="grid" x1="${left}" x2="${width - right}" y1="${y}" y2="${y}"/>
      <text class="axis" x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">
      ${esc(rounded(value))}</text>`;
  };
  // Five time labels, each a bar's start: both ends, kept inside the chart,
  // and three between.
  const last = points.length - 1;
  const ticks = [...new Set([0, 1, 2, 3, 4].map((k) => Math.round((k * last) / 4)))];
  const times = ticks.map((i) => {
    const [anchor, at] = i === 0 ? ["start", left] : i === last ? ["end", left + (i + 1) * step]
      : ["middle", left + (i + 0.5) * step];
    return `<text class="axis" x="${at.toFixed(2)}" y="${height - 6}" text-anchor="${anchor}">
      ${esc(clock(points[i].time))}</text>`;
  }).join("");
  let legendX = left;
  const legend = series.map((name) => {
    const item = `<g transform="translate(${legendX}, 6)">
      <rect class="series-${esc(name)}" width="12" height="12" rx="2"/>
      <text class="legend" x="18" y="6" dominant-baseline="middle">${esc(name)}</text></g>`;
    legendX += 40 + 7 * name.length; // room for the name at 12px
    return item;
  }).join("");

  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img"
    aria-label="${esc(series.join(", "))} per ${points[0].minutes > 1 ? "bar" : "minute"}">
    ${legend}${gridline(0)}${gridline(yMax / 2)}${gridline(yMax)}${bars}${times}</svg>`;
}
