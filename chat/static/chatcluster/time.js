// Formatting message times: relative labels, day dividers, <time> elements.

import { h } from "./dom.js";

const fullTime = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
export const clockTime = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const shortDay = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const shortDate = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

export function relative(date, now = Date.now()) {
  const secs = Math.round((now - date.getTime()) / 1000);
  if (secs < 45) return "just now";
  if (secs < 3600) return `${Math.max(1, Math.round(secs / 60))} min ago`;
  if (secs < 6 * 3600) return `${Math.round(secs / 3600)} h ago`;
  if (dayKey(date) === dayKey(new Date(now))) return `today ${clockTime.format(date)}`;
  if (secs < 6 * 86400) return `${shortDay.format(date)} ${clockTime.format(date)}`;
  return `${shortDate.format(date)} ${clockTime.format(date)}`;
}

export function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

export function dayLabel(date) {
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(date) === dayKey(today)) return "Today";
  if (dayKey(date) === dayKey(yesterday)) return "Yesterday";
  return dayFormat.format(date);
}

export function timeEl(date, className, text) {
  const node = h("time", className, text ?? relative(date));
  node.dateTime = date.toISOString();
  node.title = fullTime.format(date);
  if (text === undefined) node.dataset.relative = "";
  return node;
}

export function refreshTimes() {
  for (const node of document.querySelectorAll("time[data-relative]")) {
    node.textContent = relative(new Date(node.dateTime));
  }
}
