// A job's timeline: what happened to it, in order, from the times it keeps.
// Loaded after times.js; used by views.js's job view.
"use strict";

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
    const at = step.at === null ? "" : when(step.at, { ms: true });
    // A gap that went backwards (another machine's clock) is not shown.
    const gap = at && step.since != null && step.at >= step.since
      ? `<span class="gap">${step.verb} ${duration(step.at - step.since)}</span>` : "";
    return `<li data-step="${esc(step.name)}"><span class="step state-${esc(step.name)}">${esc(step.name)}</span>
      ${at} ${gap} <span class="muted">${esc(step.note || "")}</span></li>`;
  });
  return `<ol class="timeline">${items.join("")}</ol>`;
}
