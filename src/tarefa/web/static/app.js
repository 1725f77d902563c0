// tarefa's dashboard: plain JavaScript over the REST API (/api/v1), no build
// step. Each view is a function that fetches what it shows and returns HTML;
// the current view is drawn again every REFRESH_MS, so the page stays live.
"use strict";

const API = "api/v1";
const REFRESH_MS = 2000;
const STATES = ["queued", "waiting", "scheduled", "active", "completed", "failed"];
const PAGE = 50;
// The charts' time ranges (the URL's ?range=): how many minutes of history,
// and how many minutes each bar sums up.
const RANGES = {
  "1h": { label: "1 h", minutes: 60, perBar: 1 },
  "24h": { label: "24 h", minutes: 1440, perBar: 10 },
};
const ENDED = ["completed", "failed", "retried"]; // how a worker's attempts end
const TOTALS = [...ENDED, "enqueued"];

const esc = (value) => String(value ?? "").replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const enc = encodeURIComponent;
// A job's path in the API: its id as one segment, "/" and all (a/b -> a%2Fb).
// A browser drops the segments "." and ".." from a URL, even as %2E%2E, so
// the jobs with those ids cannot be asked for from here: say so, rather than
// send a request for some other path.
function jobPath(id) {
  if (id === "." || id === "..") {
    throw new Error(`a browser cannot send the job id "${id}" in a URL: use tarefa job`);
  }
  return `/jobs/${enc(id)}`;
}
const time = (iso) => (iso ? esc(iso.slice(0, 19).replace("T", " ")) : "");

async function api(path, options = {}) {
  const response = await fetch(`${API}${path}`, {
    ...options,
    headers: { "content-type": "application/json", ...(options.headers || {}) },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.detail || `${response.status} ${response.statusText}`);
  }
  return body;
}

function toast(message) {
  let box = document.getElementById("toast");
  if (!box) {
    box = document.createElement("div");
    box.id = "toast";
    document.body.append(box);
  }
  box.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.remove(), 4000);
}

// -- views ---------------------------------------------------------------------

const rangeOf = (params) => (Object.hasOwn(RANGES, params.get("range")) ? params.get("range") : "1h");

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
    <p class="muted">Times in UTC; the current minute shows once it is over.</p></section>`;
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
    <table><thead><tr><th>queue</th>${STATES.map((s) => `<th class="num">${s}</th>`).join("")}
    <th class="num">oldest ready</th></tr></thead><tbody>${rows ||
      '<tr><td colspan="8" class="muted">No queue has been used yet.</td></tr>'}</tbody></table>`;
}

// -- health: queues with ready jobs and no worker ----------------------------
// The health check answers 503 when unhealthy, with the same report: read it
// whatever the status. Nothing shown when it cannot be read (the status line
// says why the view failed).
async function unservedWarning() {
  const report = await fetch(`${API}/health`).then((r) => r.json()).catch(() => ({}));
  const queues = report.unserved_queues || [];
  return queues.map((q) => `<p class="warning" role="alert" data-unserved="${esc(q)}">
    Queue <strong>${esc(q)}</strong> has jobs ready and no live worker serving it:
    start one with <code>tarefa worker APP -q ${esc(q)}</code>.</p>`).join("");
}

async function queueView(name, params) {
  const state = STATES.includes(params.get("state")) ? params.get("state") : "queued";
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const range = rangeOf(params);
  const [queue, page, history] = await Promise.all([
    api(`/queues/${enc(name)}`),
    api(`/queues/${enc(name)}/jobs?state=${state}&offset=${offset}&limit=${PAGE}`),
    api(`/queues/${enc(name)}/history?minutes=${RANGES[range].minutes}`),
  ]);
  const link = (s, o = 0, r = range) => `#/queues/${enc(name)}?state=${s}&offset=${o}&range=${r}`;
  const tabs = STATES.map((s) =>
    `<a class="${s === state ? "active" : ""}" href="${link(s)}">${s} (${queue.counts[s]})</a>`).join("");
  const rows = page.jobs.map((j) => `
    <tr data-job="${esc(j.id)}">
      <td><a href="#/jobs/${enc(j.id)}?queue=${enc(name)}">${esc(j.id)}</a></td>
      <td>${esc(j.task)}</td><td class="num">${j.attempts}</td>
      <td>${time(j.enqueued_at)}</td><td>${time(j.finished_at)}</td>
      <td class="error">${j.error ? esc(`${j.error.type}: ${j.error.message}`) : ""}</td>
      <td>${jobActions(j)}</td>
    </tr>`).join("");
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
    </div>
    <div class="tabs">${tabs}</div>
    <p class="muted">${page.total} ${state} job(s); showing ${page.jobs.length ? offset + 1 : 0}–${offset + page.jobs.length}. ${more.join(" · ")}</p>
    <table><thead><tr><th>id</th><th>task</th><th class="num">attempts</th><th>enqueued</th>
    <th>finished</th><th>error</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
}

function jobActions(job) {
  const data = `data-job="${esc(job.id)}" data-queue="${esc(job.queue)}"`;
  const buttons = [];
  if (job.state === "failed") buttons.push(`<button data-action="retry" ${data}>Retry</button>`);
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
  const progress = job.progress ? `${esc(job.progress.value)} ${esc(job.progress.message || "")}` : "";
  return `<h1>Job ${esc(job.id)}</h1>
    <div class="bar">${jobActions(job)}</div>
    <table>
      ${field("queue", `<a href="#/queues/${enc(job.queue)}?state=${job.state}">${esc(job.queue)}</a>`)}
      ${field("task", esc(job.task))}
      ${field("state", `<span class="state-${esc(job.state)}">${esc(job.state)}</span>`)}
      ${field("attempts", job.attempts)}${field("stalls", job.stalls || "")}
      ${job.args === null ? field("args", '<span class="muted">not kept once completed</span>')
        : field("args", json(job.args)) + field("kwargs", json(job.kwargs))}
      ${field("options", Object.keys(job.options || {}).length ? json(job.options) : "")}
      ${field("key", esc(job.key))}${field("priority", job.priority)}
      ${field("parents", job.parents.length ? esc(job.parents.join(", ")) : "")}
      ${field("progress", progress)}
      ${field("enqueued", time(job.enqueued_at))}${field("started", time(job.started_at))}
      ${field("finished", time(job.finished_at))}${field("worker", esc(job.worker))}
      ${field("result", job.state === "completed" ? json(job.result) : "")}
      ${field("error", job.error ? `<span class="error">${esc(job.error.type)}: ${esc(job.error.message)}</span>` : "")}
    </table>
    <h2>Timeline</h2>${timeline(job)}
    ${job.error && job.error.traceback ? `<h2>Traceback</h2><pre class="traceback">${esc(job.error.traceback)}</pre>` : ""}`;
}

// "850 ms", "3.4 s", "2 min 5 s", "3 h 20 min"
function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.floor((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.floor((ms % 3_600_000) / 60_000)} min`;
}

// What happened to a job, in order, from the times it keeps: a step whose
// time is not kept is not shown. A job keeps the times of its last attempt.
// Each step: its name, when (ms), and since when (ms) the gap before it counts.
function jobSteps(job) {
  const ms = (iso) => (iso ? Date.parse(iso) : null);
  const enqueued = job.enqueued_at_ms ?? ms(job.enqueued_at);
  const ready = job.ready_at_ms ?? null; // set when a delay, back-off or retry ended
  let started = ms(job.started_at);
  if (job.attempts === 0 || started < (ready ?? enqueued)) {
    started = null; // sent back to run (a retry): that start was of an earlier run
  }
  const steps = [{ name: "enqueued", at: enqueued }];
  if (ready !== null) {
    // Attempts count from the last retry by hand, so a later attempt's ready
    // time can only be the end of a back-off.
    const why = started !== null && job.attempts > 1 ? "a back-off ended" : "a delay ended, or a retry";
    steps.push({ name: "ready", at: ready, since: enqueued, verb: "after", note: why });
  }
  if (started !== null) {
    const earlier = job.attempts > 1 ? " (earlier attempts' times are not kept)" : "";
    steps.push({ name: "started", at: started, since: ready ?? enqueued, verb: "waited",
                 note: `attempt ${job.attempts}${job.worker ? ` on ${job.worker}` : ""}${earlier}` });
  }
  if (job.progress && started !== null) {
    steps.push({ name: "progress", at: job.progress.at ?? null, since: started, verb: "after",
                 note: `${job.progress.value}${job.progress.message ? `: ${job.progress.message}` : ""}` });
  }
  if (["completed", "failed", "cancelled"].includes(job.state)) {
    const finished = ms(job.finished_at);
    if (finished !== null) {
      steps.push({ name: job.state, at: finished, since: started ?? ready ?? enqueued,
                   verb: started !== null ? "ran" : "after" });
    }
  } else {
    const now = {
      queued: "waits for a worker",
      scheduled: job.error ? `to run again after ${job.error.type}` : "waits for its time",
      waiting: "waits for the jobs it depends on",
      active: "running",
    };
    steps.push({ name: job.state, at: null, note: now[job.state] }); // where it is now
  }
  return steps;
}

function timeline(job) {
  const items = jobSteps(job).map((step) => {
    const iso = step.at === null ? null : new Date(step.at).toISOString();
    const when = iso ? `<time datetime="${esc(iso)}">${esc(iso.replace("T", " ").slice(0, 23))}</time>` : "";
    // A gap that went backwards (another machine's clock) is not shown.
    const gap = iso && step.since != null && step.at >= step.since
      ? `<span class="gap">${step.verb} ${duration(step.at - step.since)}</span>` : "";
    return `<li data-step="${esc(step.name)}"><span class="step state-${esc(step.name)}">${esc(step.name)}</span>
      ${when} ${gap} <span class="muted">${esc(step.note || "")}</span></li>`;
  });
  return `<ol class="timeline">${items.join("")}</ol>`;
}

async function workersView() {
  const workers = await api("/workers");
  const rows = workers.map((w) => `<tr><td>${esc(w.id)}</td><td>${esc(w.host)}</td>
    <td class="num">${w.pid}</td><td>${esc(w.queues.join(", "))}</td>
    <td class="num">${w.running} / ${w.concurrency}</td><td class="num">${Math.round(w.uptime)} s</td>
    <td class="num">${Math.round(w.last_beat_ago)} s ago</td></tr>`).join("");
  return `<h1>Workers</h1><table><thead><tr><th>worker</th><th>host</th><th class="num">pid</th>
    <th>queues</th><th class="num">running</th><th class="num">up</th><th class="num">last beat</th>
    </tr></thead><tbody>${rows || '<tr><td colspan="7" class="muted">No live worker.</td></tr>'}</tbody></table>`;
}

async function cronView() {
  const schedules = await api("/cron");
  const rows = schedules.map((c) => `<tr><td>${esc(c.task)}</td><td><code>${esc(c.schedule)}</code></td>
    <td>${esc(c.tz)}</td><td>${esc(c.queue)}</td><td>${time(c.next_run)} UTC</td></tr>`).join("");
  return `<h1>Cron schedules</h1><table><thead><tr><th>task</th><th>schedule</th><th>time zone</th>
    <th>queue</th><th>next run</th></tr></thead><tbody>${rows ||
      '<tr><td colspan="5" class="muted">No cron task in this app.</td></tr>'}</tbody></table>`;
}

// -- actions -------------------------------------------------------------------

const ACTIONS = {
  retry: (d) => api(`${jobPath(d.job)}/retry?queue=${enc(d.queue)}`, { method: "POST" }),
  cancel: (d) => api(`${jobPath(d.job)}/cancel?queue=${enc(d.queue)}`, { method: "POST" }),
  delete: (d) => api(`${jobPath(d.job)}?queue=${enc(d.queue)}`, { method: "DELETE" }),
  pause: (d) => api(`/queues/${enc(d.queue)}/pause`, { method: "POST" }),
  resume: (d) => api(`/queues/${enc(d.queue)}/resume`, { method: "POST" }),
  purge: (d) => api(`/queues/${enc(d.queue)}/purge`, { method: "POST" }),
  "retry-failed": (d) => api(`/queues/${enc(d.queue)}/retry-failed`, { method: "POST" }),
  "delete-failed": (d) => api(`/queues/${enc(d.queue)}/failed`, { method: "DELETE" }),
};
const CONFIRM = {
  delete: "Delete this job?", purge: "Delete every job of this queue?",
  "delete-failed": "Delete every failed job of this queue?",
};

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const { action } = button.dataset;
  if (CONFIRM[action] && !window.confirm(CONFIRM[action])) return;
  button.disabled = true;
  try {
    await ACTIONS[action](button.dataset);
    toast(`${action}: done`);
  } catch (error) {
    toast(`${action}: ${error.message}`);
  }
  render();
});

// -- routing and refresh -----------------------------------------------------

function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "queues" && parts[1]) return () => queueView(parts[1], params);
  if (parts[0] === "jobs" && parts[1]) return () => jobView(parts[1], params);
  if (parts[0] === "workers") return workersView;
  if (parts[0] === "cron") return cronView;
  return () => queuesView(params);
}

async function render() {
  const status = document.getElementById("status");
  try {
    document.getElementById("view").innerHTML = await route()();
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    status.className = "status";
  } catch (error) {
    status.textContent = error.message;
    status.className = "status down";
  }
}

window.addEventListener("hashchange", render);
render();
setInterval(render, REFRESH_MS);
