// Message search (GET /api/search): each result shows its room, author, time and the text
// around the words found. Picking one opens its room at that message: the history around
// it (?around=), scrolled to it and highlighted for a moment.

import { rooms } from "../state.js";
import { h, toast } from "../dom.js";
import { api, query, debounce } from "../api.js";
import { timeEl } from "../time.js";
import { selectRoom } from "./rooms.js";
import { label } from "./sidebar.js";

const LIMIT = 30;
const AROUND = 50;
const TYPING_PAUSE_MS = 300;
// Characters of a body shown around the first word found.
const SNIPPET = 160;

const $ = (id) => document.getElementById(id);
const dialog = $("search");
const input = $("search-q");
const list = $("search-results");
const status = $("search-status");

let asking = null;

function words(q) {
  return q.toLowerCase().split(/\s+/).filter(Boolean);
}

/** A stretch of `body` around the first word of `q`, the words marked. */
function snippet(body, q) {
  const lower = body.toLowerCase();
  const terms = words(q);
  const first = Math.min(...terms.map((t) => lower.indexOf(t)).filter((i) => i >= 0), body.length);
  const start = first < SNIPPET / 2 || body.length <= SNIPPET ? 0 : first - SNIPPET / 3;
  let text = body.slice(start, start + SNIPPET);
  if (start > 0) text = `…${text}`;
  if (start + SNIPPET < body.length) text += "…";
  const pattern = new RegExp(`(${terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})`, "gi");
  return text.split(pattern).map((part, i) => (i % 2 ? h("mark", "", part) : document.createTextNode(part)));
}

function resultRow(result, q) {
  const li = h("li", "search-item");
  const button = h("button", "search-hit");
  button.type = "button";
  const room = rooms.get(result.room);
  const meta = h("span", "search-meta");
  meta.append(
    h("span", "search-room", room ? label(room) : `#${result.room}`),
    h("span", "search-user", result.user),
    timeEl(new Date(result.ts), "search-ts"),
  );
  const body = h("span", "search-body");
  body.append(...snippet(result.body ?? "", q));
  button.append(meta, body);
  button.addEventListener("click", () => {
    dialog.close();
    openMessage(result.room, result.seq);
  });
  li.append(button);
  return li;
}

async function run() {
  asking?.abort();
  const q = input.value.trim();
  if (!q) {
    list.replaceChildren();
    status.textContent = "";
    return;
  }
  const mine = (asking = new AbortController());
  status.textContent = "Searching…";
  try {
    const { results } = await api(`/api/search?${query({ q, limit: LIMIT })}`, { signal: mine.signal });
    list.replaceChildren(...results.map((r) => resultRow(r, q)));
    if (!results.length) status.textContent = `No message has all of “${q}”.`;
    else status.textContent = `${results.length}${results.length === LIMIT ? "+" : ""} message${results.length === 1 ? "" : "s"} found, newest first.`;
  } catch (err) {
    if (err.name !== "AbortError") status.textContent = `Search failed: ${err.message}`;
  }
}

/** Open `slug` at message `seq`, with the history around it. */
export async function openMessage(slug, seq) {
  const messages = (params) => api(`/api/rooms/${slug}/messages?${query(params)}`).then((answer) => answer.messages);
  let nearby;
  let newest;
  try {
    // The newest message tells whether the window reaches the end of the room.
    [nearby, newest] = await Promise.all([messages({ around: seq, limit: AROUND }), messages({ limit: 1 })]);
  } catch (err) {
    return toast(`That message cannot be opened: ${err.message}`);
  }
  const reachesEnd = !newest.length || nearby.some((m) => m.seq === newest[0].seq);
  selectRoom(slug, { around: { messages: nearby, seq, reachesEnd } });
}

export function openSearch() {
  if (!dialog.open) dialog.showModal();
  input.select();
  input.focus();
}

input.addEventListener("input", debounce(run, TYPING_PAUSE_MS));
$("search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  run();
});
$("search-open").addEventListener("click", openSearch);
dialog.querySelector(".dialog-close").addEventListener("click", () => dialog.close());
