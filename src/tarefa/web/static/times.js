// Times as the reader's clock shows them, labelled "local", with the UTC time
// on hover (title): "14:03:12 local" today, "2024-05-01 14:03:12 local"
// otherwise. Loaded first; the views build their <time> elements from here.
"use strict";

const pad = (n, width = 2) => String(n).padStart(width, "0");
const dayOf = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const isToday = (d) => dayOf(d) === dayOf(new Date());

// "14:03:12" (and ".345" with ms); "14:03" when seconds is false.
function localClock(d, { seconds = true, ms = false } = {}) {
  let text = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (seconds) text += `:${pad(d.getSeconds())}`;
  if (ms) text += `.${pad(d.getMilliseconds(), 3)}`;
  return text;
}

// "14:03:12 local", with the date in front unless it is today.
function localText(d, options = {}) {
  const clockText = localClock(d, options);
  return `${isToday(d) ? clockText : `${dayOf(d)} ${clockText}`} local`;
}

// "2024-05-01 12:03:12 UTC"
function utcText(d, { ms = false } = {}) {
  return `${d.toISOString().slice(0, ms ? 23 : 19).replace("T", " ")} UTC`;
}

// A <time> element for an ISO time or ms since the epoch; "" for none.
function when(value, options = {}) {
  if (value === null || value === undefined || value === "") return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return esc(value);
  return `<time datetime="${esc(d.toISOString())}" title="${esc(utcText(d, options))}">` +
    `${esc(localText(d, options))}</time>`;
}

// "in 5 min", "in 40 s", "2 h ago", "now": how far a time is from now.
function fromNow(value) {
  const ms = new Date(value).getTime() - Date.now();
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 1) return "now";
  const amount = s < 60 ? `${s} s` : s < 3600 ? `${Math.round(s / 60)} min`
    : s < 86400 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`
    : `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  return ms > 0 ? `in ${amount}` : `${amount} ago`;
}
