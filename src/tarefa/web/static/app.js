// tarefa's dashboard: plain JavaScript over the REST API (/api/v1), no build
// step. Each view (views.js) fetches what it shows and returns HTML; the
// current view is drawn again every REFRESH_MS, so the page stays live. A
// refresh changes only what changed (morphdom), so a scrolled box, a focused
// button or a selection outside what changed stays as it was; while the
// reader has text selected in the page, refreshes wait.
"use strict";

const API = "api/v1";
const REFRESH_MS = 2000;

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

class NotFound extends Error {}

async function api(path, options = {}) {
  const response = await fetch(`${API}${path}`, {
    ...options,
    headers: { "content-type": "application/json", ...(options.headers || {}) },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    // A 422 lists its issues: say what each one is.
    const detail = Array.isArray(body.detail) ? body.detail.map((i) => i.msg).join("; ") : body.detail;
    const message = detail || `${response.status} ${response.statusText}`;
    throw response.status === 404 ? new NotFound(message) : new Error(message);
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

// -- selected jobs (a queue's list) ----------------------------------------------

// The ids of the jobs picked in the list on screen; a list of another queue,
// state or page starts with none, and a job that left the list is dropped.
const selection = new Set();
let selectionOf = null;

function keepSelected(list, jobs) {
  if (list !== selectionOf) selection.clear();
  selectionOf = list;
  const shown = new Set(jobs.map((j) => j.id));
  for (const id of selection) if (!shown.has(id)) selection.delete(id);
}

document.addEventListener("change", (event) => {
  const box = event.target;
  if (box.matches("input[data-pick]")) {
    if (box.checked) selection.add(box.dataset.pick);
    else selection.delete(box.dataset.pick);
  } else if (box.matches("input[data-pick-all]")) {
    for (const pick of document.querySelectorAll("input[data-pick]")) {
      if (box.checked) selection.add(pick.dataset.pick);
      else selection.delete(pick.dataset.pick);
    }
  } else {
    return;
  }
  render();
});

// -- cleaning a queue (its Clean form) ----------------------------------------

// The state and age chosen stay chosen across the page's redraws, and the
// page is not redrawn while one of them has the focus (render).
const cleaning = { state: null, age: "7d" };

document.addEventListener("input", (event) => {
  const field = event.target.dataset?.clean;
  if (field) cleaning[field] = event.target.value;
});

const cleanState = () => cleaning.state || document.querySelector('[data-clean="state"]').value;

async function clean(d) {
  const state = cleanState();
  const answer = await api(`/queues/${enc(d.queue)}/clean`, {
    method: "POST", body: JSON.stringify({ state, older_than: cleaning.age.trim() }),
  });
  return `${answer.deleted} ${state} job(s) deleted`;
}

// -- actions -------------------------------------------------------------------

const ACTIONS = {
  retry: (d) => api(`${jobPath(d.job)}/retry?queue=${enc(d.queue)}`, { method: "POST" }),
  cancel: (d) => api(`${jobPath(d.job)}/cancel?queue=${enc(d.queue)}`, { method: "POST" }),
  "run-now": (d) => api(`${jobPath(d.job)}/run-now?queue=${enc(d.queue)}`, { method: "POST" }),
  delete: (d) => api(`${jobPath(d.job)}?queue=${enc(d.queue)}`, { method: "DELETE" }),
  pause: (d) => api(`/queues/${enc(d.queue)}/pause`, { method: "POST" }),
  resume: (d) => api(`/queues/${enc(d.queue)}/resume`, { method: "POST" }),
  purge: (d) => api(`/queues/${enc(d.queue)}/purge`, { method: "POST" }),
  "retry-failed": (d) => api(`/queues/${enc(d.queue)}/retry-failed`, { method: "POST" }),
  "delete-failed": (d) => api(`/queues/${enc(d.queue)}/failed`, { method: "DELETE" }),
  clean,
};
const CONFIRM = {
  delete: "Delete this job?", purge: "Delete every job of this queue?",
  "delete-failed": "Delete every failed job of this queue?",
  clean: (d) => `Delete the ${cleanState()} jobs of ${d.queue} that ended more than ${cleaning.age.trim()} ago?`,
};

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const { action } = button.dataset;
  const question = typeof CONFIRM[action] === "function" ? CONFIRM[action](button.dataset) : CONFIRM[action];
  if (question && !window.confirm(question)) return;
  button.disabled = true;
  try {
    const said = await ACTIONS[action](button.dataset);
    toast(`${action}: ${typeof said === "string" ? said : "done"}`);
  } catch (error) {
    toast(`${action}: ${error.message}`);
  }
  render();
});

// The selected jobs, one request each (the per-job routes), one at a time.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-bulk]");
  if (!button) return;
  const action = button.dataset.bulk;
  const ids = [...selection];
  const queue = decodeURIComponent(location.hash.split("?")[0].split("/")[2] || "");
  if (action === "delete" && !window.confirm(`Delete ${ids.length} job(s)?`)) return;
  button.disabled = true;
  const failures = [];
  for (const id of ids) {
    try {
      await ACTIONS[action]({ job: id, queue });
      selection.delete(id);
    } catch (error) {
      failures.push(`${id}: ${error.message}`);
    }
  }
  const done = ids.length - failures.length;
  toast(`${action}: ${done} done${failures.length ? `, ${failures.length} failed (${failures[0]})` : ""}`);
  render();
});

// A queue's search: the words go into the URL (?search=), from the first page.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("[data-search]")) return;
  event.preventDefault();
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const words = new FormData(form).get("search").trim();
  if (words) params.set("search", words);
  else params.delete("search");
  params.delete("offset");
  document.activeElement?.blur(); // sent: the list refreshes again (render)
  location.hash = `${path}?${params}`;
});

// -- routing and refresh -----------------------------------------------------

function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return () => queuesView(params);
  if (parts[0] === "queues" && parts[1]) return () => queueView(parts[1], params);
  if (parts[0] === "jobs" && parts[1]) return () => jobView(parts[1], params);
  if (parts[0] === "workers") return workersView;
  if (parts[0] === "cron") return cronView;
  return async () => {
    throw new NotFound(`no page ${location.hash}`);
  };
}

// Whether the reader has text selected in the view (to copy a traceback).
function readingSelection() {
  const selected = window.getSelection();
  return selected && !selected.isCollapsed && selected.rangeCount > 0 &&
    document.getElementById("view").contains(selected.getRangeAt(0).commonAncestorContainer);
}

// Draw `html` in the view, changing only the nodes that differ.
function draw(html) {
  const view = document.getElementById("view");
  morphdom(view, `<main id="view" aria-live="polite">${html}</main>`, {
    onBeforeElUpdated: (from, to) => !from.isEqualNode(to),
  });
}

let drawing = 0; // the latest render's number: an older one's answer is dropped
let drawnHash = null; // the URL whose view is on screen
const counters = { refreshes: 0, drawn: 0 }; // shown as data-* of <body> (for tests)

async function render() {
  const mine = ++drawing;
  const hash = location.hash;
  const status = document.getElementById("status");
  const navigated = hash !== drawnHash;
  // Someone choosing what to clean: redrawn once they leave the field.
  if (!navigated && document.activeElement?.matches("[data-keep-focus] select, [data-keep-focus] input")) return;
  if (!navigated && readingSelection()) {
    status.textContent = "paused while text is selected";
    status.className = "status";
    return;
  }
  let html = null;
  try {
    html = await route()();
    status.textContent = `updated ${localText(new Date())}`;
    status.className = "status";
  } catch (error) {
    if (mine !== drawing) return;
    if (error instanceof NotFound) html = notFoundView(error.message);
    else if (navigated) html = problemView(error.message);
    status.textContent = error.message;
    status.className = "status down";
  }
  if (mine !== drawing) return;
  if (html !== null) {
    draw(html);
    drawnHash = hash;
    document.body.dataset.drawn = ++counters.drawn;
  }
}

function refresh() {
  render().finally(() => {
    document.body.dataset.refreshes = ++counters.refreshes;
  });
}

window.addEventListener("hashchange", () => {
  window.scrollTo(0, 0); // a new page starts at its top
  render();
});
window.addEventListener("resize", () => render()); // the chart's width follows the page's
render();
setInterval(refresh, REFRESH_MS);
