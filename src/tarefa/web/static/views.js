// The dashboard's views: each fetches what it shows from the REST API and
// returns HTML (app.js draws it, and draws it again every refresh). Loaded
// after times.js and chart.js, before app.js, whose helpers they use.
"use strict";

// The states a queue counts, and those a list can show: cancelled jobs are in
// no index (they expire on their own), so they are listed but not counted.
const STATES = ["queued", "waiting", "scheduled", "active", "completed", "failed"];
const LISTED = [...STATES, "cancelled"];
const PAGE = 50;
// The charts' time ranges (the URL's ?range=): how many minutes of history,
// and how many minutes each bar sums up.
const RANGES = {
  "1h": { label: "1 h", minutes: 60, perBar: 1 },
  "24h": { label: "24 h", minutes: 1440, perBar: 10 },
};
const ENDED = ["completed", "failed", "retried"]; // how a worker's attempts end
const TOTALS = [...ENDED, "enqueued"];

const rangeOf = (params) => (Object.hasOwn(RANGES, params.get("range")) ? params.get("range") : "1h");

// A table in a box of its own, which scrolls sideways when the page is
// narrower than the table (a phone), rather than the whole page.
const tableBox = (inner) => `<div class="table-box"><table>${inner}</table></div>`;

// Counts since the queues began, in a row of boxes (like Sidekiq's header).
function totalsBar(totals) {
  return `<div class="totals">${TOTALS.map((name) => `
    <div class="total series-${name}" data-total="${name}">
      <span class="value">${esc(Number(totals[name]).toLocaleString("en-US"))}</span>
      <span class="label">${name}</span></div>`).join("")}</div>`;
}

// The jobs-per-minute chart with its range selector; `link(range)` is the
// URL of this same view with the other range.
function historyPanel(points, range, link) {
  const choices = Object.entries(RANGES).map(([key, r]) =>
    `<a class="${key === range ? "active" : ""}" href="${link(key)}">${r.label}</a>`).join("");
  const per = RANGES[range].perBar > 1 ? `${RANGES[range].perBar} minutes` : "minute";
  return `<section class="panel" data-range="${range}">
    <div class="panel-head"><h2>Jobs per ${per}, last ${RANGES[range].label}</h2>
    <div class="tabs">${choices}</div></div>
    ${chart(perBars(points, RANGES[range].perBar), ENDED)}
    <p class="muted">Local times (hover a bar for UTC); the current minute shows once it is over.</p>
    </section>`;
}

async function queuesView(params) {
  const range = rangeOf(params);
  const [queues, history, unserved] = await Promise.all([
    api("/queues"),
    api(`/history?minutes=${RANGES[range].minutes}`),
    unservedWarning(),
  ]);
  const sums = Object.fromEntries(TOTALS.map((name) =>
    [name, queues.reduce((sum, q) => sum + q.totals[name], 0)]));
  const rows = queues.map((q) => `
    <tr data-queue="${esc(q.name)}">
      <td><a href="#/queues/${enc(q.name)}">${esc(q.name)}</a>${q.paused ? ' <span class="muted">(paused)</span>' : ""}</td>
      ${STATES.map((s) => `<td class="num"><a href="#/queues/${enc(q.name)}?state=${s}">${q.counts[s]}</a></td>`).join("")}
      <td class="num">${q.oldest_ready_age == null ? "" : q.oldest_ready_age.toFixed(1) + " s"}</td>
    </tr>`).join("");
  return `<h1>Queues</h1>
    ${unserved}
    ${totalsBar(sums)}
    ${historyPanel(history, range, (r) => `#/?range=${r}`)}
    ${tableBox(`<thead><tr><th>queue</th>${STATES.map((s) => `<th class="num">${s}</th>`).join("")}
    <th class="num">oldest ready</th></tr></thead><tbody>${rows ||
      '<tr><td colspan="8" class="muted">No queue has been used yet.</td></tr>'}</tbody>`)}`;
}

// The health check's queues with ready jobs and no live worker serving them.
// It answers 503 when unhealthy, with the same report: read it whatever the
// status. Nothing shown when it cannot be read (the status line says why the
// view failed).
async function unservedWarning() {
  const report = await fetch(`${API}/health`).then((r) => r.json()).catch(() => ({}));
  const queues = report.unserved_queues || [];
  return queues.map((q) => `<p class="warning" role="alert" data-unserved="${esc(q)}">
    Queue <strong>${esc(q)}</strong> has jobs ready and no live worker serving it:
    start one with <code>tarefa worker APP -q ${esc(q)}</code>.</p>`).join("");
}

// A job's reported progress as a bar, when its value reads as a fraction
// (0.4) or a percentage (40); else as the number it is.
function progressBar(progress) {
  if (!progress) return "";
  const { value, message } = progress;
  const fraction = value >= 0 && value <= 1 ? value : value > 1 && value <= 100 ? value / 100 : null;
  const text = `${fraction === null ? value : `${Math.round(fraction * 100)}%`}${message ? ` ${message}` : ""}`;
  if (fraction === null) return esc(text);
  return `<div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100"
    aria-valuenow="${Math.round(fraction * 100)}"><span style="width: ${(fraction * 100).toFixed(1)}%"></span></div>
    <span class="progress-text">${esc(text)}</span>`;
}

const runsAt = (iso) => (iso ? `${when(iso)} <span class="muted">${esc(fromNow(iso))}</span>` : "");

// The columns of a queue's list, for each state: what tells its jobs apart.
const CELLS = {
  runs: ["runs", (j) => runsAt(j.run_at)],
  enqueued: ["enqueued", (j) => when(j.enqueued_at)],
  started: ["started", (j) => when(j.started_at)],
  progress: ["progress", (j) => progressBar(j.progress)],
  worker: ["worker", (j) => esc(j.worker)],
  finished: ["finished", (j) => when(j.finished_at)],
  error: ["error", (j) => (j.error ? `<span class="error">${esc(`${j.error.type}: ${j.error.message}`)}</span>` : "")],
};
const COLUMNS = {
  queued: ["enqueued"], waiting: ["enqueued"], scheduled: ["runs", "enqueued", "error"],
  active: ["started", "progress", "worker"], completed: ["enqueued", "finished"],
  failed: ["enqueued", "finished", "error"], cancelled: ["enqueued", "finished"],
};
// What may be done to many selected jobs at once, by state.
const BULK = {
  queued: ["cancel", "delete"], waiting: ["cancel", "delete"], active: ["cancel", "delete"],
  scheduled: ["run-now", "cancel", "delete"], completed: ["delete"], failed: ["retry", "delete"],
  cancelled: ["delete"],
};
const LABELS = { retry: "Retry", cancel: "Cancel", delete: "Delete", "run-now": "Run now" };

function bulkBar(state, jobs) {
  const picked = jobs.filter((j) => selection.has(j.id)).length;
  const buttons = BULK[state].map((action) => `<button data-bulk="${action}"
    class="${action === "delete" ? "danger" : ""}" ${picked ? "" : "disabled"}>${LABELS[action]} selected</button>`);
  return `<div class="bar bulk"><span class="muted" data-picked="${picked}">${picked} selected</span>
    ${buttons.join(" ")}</div>`;
}

async function queueView(name, params) {
  const state = LISTED.includes(params.get("state")) ? params.get("state") : "queued";
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const range = rangeOf(params);
  const search = params.get("search") || "";
  const matching = search ? `&search=${enc(search)}` : "";
  const [queue, page, history] = await Promise.all([
    api(`/queues/${enc(name)}`),
    api(`/queues/${enc(name)}/jobs?state=${state}&offset=${offset}&limit=${PAGE}${matching}`),
    api(`/queues/${enc(name)}/history?minutes=${RANGES[range].minutes}`),
  ]);
  keepSelected(`${name}|${state}|${offset}|${search}`, page.jobs);
  const link = (s, o = 0, r = range) => `#/queues/${enc(name)}?state=${s}&offset=${o}&range=${r}${matching}`;
  // While searching, only the list on screen has a count of its matches.
  const count = (s) => (s === state ? page.total : search ? null : queue.counts[s] ?? null);
  const tabs = LISTED.map((s) => `<a class="${s === state ? "active" : ""}" href="${link(s)}">${s}${
    count(s) === null ? "" : ` (${count(s)})`}</a>`).join("");
  const columns = COLUMNS[state].map((c) => CELLS[c]);
  const rows = page.jobs.map((j) => `
    <tr data-job="${esc(j.id)}">
      <td><input type="checkbox" data-pick="${esc(j.id)}" aria-label="select ${esc(j.id)}"
        ${selection.has(j.id) ? "checked" : ""}></td>
      <td><a href="#/jobs/${enc(j.id)}?queue=${enc(name)}">${esc(j.id)}</a></td>
      <td>${esc(j.task)}</td><td class="num">${j.attempts}</td>
      ${columns.map(([, cell]) => `<td>${cell(j)}</td>`).join("")}
      <td class="actions">${jobActions(j)}</td>
    </tr>`).join("");
  const all = page.jobs.length > 0 && page.jobs.every((j) => selection.has(j.id));
  const more = [];
  if (offset > 0) more.push(`<a href="${link(state, Math.max(0, offset - PAGE))}">previous</a>`);
  if (offset + page.jobs.length < page.total) more.push(`<a href="${link(state, offset + PAGE)}">next</a>`);
  return `<h1>Queue ${esc(name)}${queue.paused ? " (paused)" : ""}</h1>
    ${totalsBar(queue.totals)}
    ${historyPanel(history, range, (r) => link(state, offset, r))}
    <div class="bar">
      ${queue.paused ? `<button data-action="resume" data-queue="${esc(name)}">Resume</button>`
                     : `<button data-action="pause" data-queue="${esc(name)}">Pause</button>`}
      ${state === "failed" && page.total ? `<button data-action="retry-failed" data-queue="${esc(name)}">Retry all failed</button>
        <button class="danger" data-action="delete-failed" data-queue="${esc(name)}">Delete all failed</button>` : ""}
      <button class="danger" data-action="purge" data-queue="${esc(name)}">Purge</button>
      ${cleanForm(name, state)}
    </div>
    <div class="tabs">${tabs}</div>
    ${searchForm(search)}
    <p class="muted">${page.total} ${state} job(s)${search ? ` matching “${esc(search)}”` : ""}${page.complete === false
      ? " (a bounded search of the queue's jobs: some may be missing)" : ""}; showing ${page.jobs.length ? offset + 1 : 0}–${offset + page.jobs.length}. ${more.join(" · ")}</p>
    ${bulkBar(state, page.jobs)}
    ${tableBox(`<thead><tr><th><input type="checkbox" data-pick-all aria-label="select all"
      ${all ? "checked" : ""} ${page.jobs.length ? "" : "disabled"}></th>
    <th>id</th><th>task</th><th class="num">attempts</th>
    ${columns.map(([title]) => `<th>${title}</th>`).join("")}<th></th></tr></thead><tbody>${rows}</tbody>`)}`;
}

// Search a queue's list by id, task or arguments (the URL's ?search=, app.js).
const searchForm = (search) => `<form class="search" data-search data-keep-focus role="search">
  <input type="search" name="search" aria-label="search jobs" maxlength="200"
    placeholder="id, task or argument" value="${esc(search)}">
  <button type="submit">Search</button></form>`;

// Delete the jobs of one ended state by age (the choices live in `cleaning`).
const CLEANABLE = ["completed", "failed", "cancelled"];

function cleanForm(name, state) {
  const chosen = cleaning.state || (CLEANABLE.includes(state) ? state : "completed");
  const options = CLEANABLE.map((s) =>
    `<option value="${s}"${s === chosen ? " selected" : ""}>${s}</option>`).join("");
  return `<span class="clean" data-keep-focus>
    <label>clean <select data-clean="state" aria-label="state to clean">${options}</select></label>
    <label>older than <input data-clean="age" aria-label="older than" size="5"
      value="${esc(cleaning.age)}" placeholder="7d"></label>
    <button class="danger" data-action="clean" data-queue="${esc(name)}">Clean</button></span>`;
}

function jobActions(job) {
  const data = `data-job="${esc(job.id)}" data-queue="${esc(job.queue)}"`;
  const buttons = [];
  if (job.state === "failed") buttons.push(`<button data-action="retry" ${data}>Retry</button>`);
  if (job.state === "scheduled") buttons.push(`<button data-action="run-now" ${data}>Run now</button>`);
  if (["queued", "scheduled", "active", "waiting"].includes(job.state)) {
    buttons.push(`<button data-action="cancel" ${data}>Cancel</button>`);
  }
  buttons.push(`<button class="danger" data-action="delete" ${data}>Delete</button>`);
  return buttons.join(" ");
}

async function jobView(id, params) {
  const queue = params.get("queue");
  const job = await api(`${jobPath(id)}${queue ? `?queue=${enc(queue)}` : ""}`);
  const field = (name, value) => (value === null || value === undefined || value === "" ? ""
    : `<tr><th>${name}</th><td>${value}</td></tr>`);
  const json = (value) => `<code>${esc(JSON.stringify(value))}</code>`;
  return `<h1>Job ${esc(job.id)}</h1>
    <div class="bar">${jobActions(job)}</div>
    ${tableBox(`
      ${field("queue", `<a href="#/queues/${enc(job.queue)}?state=${job.state}">${esc(job.queue)}</a>`)}
      ${field("task", esc(job.task))}
      ${field("state", `<span class="state-${esc(job.state)}">${esc(job.state)}</span>`)}
      ${field("runs", runsAt(job.run_at))}
      ${field("attempts", job.attempts)}${field("stalls", job.stalls || "")}
      ${job.args === null ? field("args", '<span class="muted">not kept once completed</span>')
        : field("args", json(job.args)) + field("kwargs", json(job.kwargs))}
      ${field("options", Object.keys(job.options || {}).length ? json(job.options) : "")}
      ${field("key", esc(job.key))}${field("priority", job.priority)}
      ${field("parents", job.parents.length ? esc(job.parents.join(", ")) : "")}
      ${field("progress", progressBar(job.progress))}
      ${field("enqueued", when(job.enqueued_at))}${field("started", when(job.started_at))}
      ${field("finished", when(job.finished_at))}${field("worker", esc(job.worker))}
      ${field("result", job.state === "completed" ? json(job.result) : "")}
      ${field("error", job.error ? `<span class="error">${esc(job.error.type)}: ${esc(job.error.message)}</span>` : "")}`)}
    <h2>Timeline</h2>${timeline(job)}
    ${job.error && job.error.traceback ? `<h2>Traceback</h2><pre class="traceback">${esc(job.error.traceback)}</pre>` : ""}`;
}

// What each live worker runs now: the active jobs of its queues, by the
// worker that leased them (a job keeps its worker's id).
async function runningByWorker(workers) {
  const queues = [...new Set(workers.flatMap((w) => w.queues))];
  const pages = await Promise.all(queues.map((q) =>
    api(`/queues/${enc(q)}/jobs?state=active&limit=500`).catch(() => ({ jobs: [] }))));
  const byWorker = new Map();
  for (const job of pages.flatMap((p) => p.jobs)) {
    if (!byWorker.has(job.worker)) byWorker.set(job.worker, []);
    byWorker.get(job.worker).push(job);
  }
  return byWorker;
}

async function workersView() {
  const workers = await api("/workers");
  const running = await runningByWorker(workers);
  const jobsOf = (w) => (running.get(w.id) || []).map((j) => `<li data-running="${esc(j.id)}">
    <a href="#/jobs/${enc(j.id)}?queue=${enc(j.queue)}">${esc(j.id)}</a> ${esc(j.task)}
    <span class="muted">since</span> ${when(j.started_at)}
    <span class="muted">(${esc(fromNow(j.started_at))})</span></li>`).join("");
  const rows = workers.map((w) => `<tr data-worker="${esc(w.id)}"><td>${esc(w.id)}</td><td>${esc(w.host)}</td>
    <td class="num">${w.pid}</td><td>${esc(w.queues.join(", "))}</td>
    <td class="num">${w.running} / ${w.concurrency}</td><td>${when(w.started_at)}</td>
    <td class="num">${Math.round(w.last_beat_ago)} s ago</td></tr>
    ${jobsOf(w) ? `<tr class="running" data-running-on="${esc(w.id)}"><td colspan="7">
      <ul class="running-jobs">${jobsOf(w)}</ul></td></tr>` : ""}`).join("");
  return `<h1>Workers</h1>${tableBox(`<thead><tr><th>worker</th><th>host</th><th class="num">pid</th>
    <th>queues</th><th class="num">running</th><th>up since</th><th class="num">last beat</th>
    </tr></thead><tbody>${rows || '<tr><td colspan="7" class="muted">No live worker.</td></tr>'}</tbody>`)}`;
}

async function cronView() {
  const schedules = await api("/cron");
  const rows = schedules.map((c) => `<tr><td>${esc(c.task)}</td><td><code>${esc(c.schedule)}</code></td>
    <td>${esc(c.tz)}</td><td>${esc(c.queue)}</td><td>${runsAt(c.next_run)}</td></tr>`).join("");
  return `<h1>Cron schedules</h1>${tableBox(`<thead><tr><th>task</th><th>schedule</th><th>time zone</th>
    <th>queue</th><th>next run</th></tr></thead><tbody>${rows ||
      '<tr><td colspan="5" class="muted">No cron task in this app.</td></tr>'}</tbody>`)}`;
}

// What an unknown queue, job or page shows instead of the page before it.
function notFoundView(message) {
  const text = message.charAt(0).toUpperCase() + message.slice(1);
  return `<section class="not-found" data-view="not-found"><h1>Not found</h1>
    <p>${esc(text)}.</p>
    <p class="muted">A job is kept for a while once it has ended, then expires; a deleted
    one is gone at once.</p>
    <p><a href="#/">All queues</a> · <a href="#/workers">Workers</a></p></section>`;
}

// What a page that could not be drawn shows, when there is no earlier
// drawing of it to keep (a refresh that fails keeps it, with the status red).
function problemView(message) {
  return `<section class="not-found" data-view="problem"><h1>This page cannot be shown</h1>
    <p class="error">${esc(message)}</p><p><a href="#/">All queues</a></p></section>`;
}
