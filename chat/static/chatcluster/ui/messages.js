// The message pane: message list and grouping, history paging, the "new messages"
// marker and jump button, read tracking, and pending (unacknowledged) sends.

import { ME, client, rooms, pendingSends, state } from "../state.js";
import { markReadUpTo } from "../reads.js";
import { ui, h, avatar } from "../dom.js";
import { dayKey, dayLabel, clockTime, timeEl } from "../time.js";
import { renderRoomList, showRoomProblem } from "./rooms.js";
import { actionsBar, markRow, messageBody } from "./actions.js";
import { reactionsRow } from "./reactions.js";
import { applyRole, loadRole, publishProblem } from "./moderation.js";

const PAGE = 50;
// Messages from one author closer together than this share one header.
const GROUP_GAP_MS = 5 * 60 * 1000;
// Within this many pixels of the bottom counts as "reading the newest messages".
const BOTTOM_SLACK_PX = 48;
// Start fetching older history this close to the top, before the user hits it.
const TOP_PREFETCH_PX = 200;
// How long a message opened from search stays highlighted.
const FOUND_SHOW_MS = 4000;

export function storeMessage(room, msg) {
  if (room.seqs.has(msg.seq)) return false;
  room.seqs.add(msg.seq);
  msg.reactions ??= {}; // live messages have none yet; history gives {emoji: [users]}
  const last = room.list[room.list.length - 1];
  if (!last || last.seq < msg.seq) room.list.push(msg);
  else {
    room.list.push(msg);
    room.list.sort((a, b) => a.seq - b.seq);
  }
  return true;
}

export function continues(prev, msg) {
  if (!prev || prev.user !== msg.user) return false;
  const a = new Date(prev.ts);
  const b = new Date(msg.ts);
  return b - a < GROUP_GAP_MS && dayKey(a) === dayKey(b);
}

export function divider(className, text) {
  const li = h("li", `divider ${className}`);
  li.setAttribute("role", "separator");
  li.append(h("span", "", text));
  return li;
}

/** The loaded message `seq` of `room`, or undefined. */
export function findMessage(room, seq) {
  const list = room.list;
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].seq === seq) return list[mid];
    if (list[mid].seq < seq) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** The row of message `seq` when `room` is on screen. */
export function rowOf(room, seq) {
  return room.slug === state.active ? ui.messages.querySelector(`li.msg[data-seq="${seq}"]`) : null;
}

/** Run `change` (a row grows or shrinks) and stay at the bottom if the list was there. */
export function keepingBottom(change) {
  const atBottom = isAtBottom();
  change();
  if (atBottom) scrollToBottom();
}

/** Whether `msg` is the first loaded message at or after `seq` (seqs also count changes). */
function firstFrom(seq, prev, msg) {
  return seq !== null && msg.seq >= seq && (!prev || prev.seq < seq);
}

/** The elements for `msg`: dividers it needs, then the message row itself. */
export function messageNodes(room, prev, msg) {
  const nodes = [];
  const date = new Date(msg.ts);
  let breaks = false;
  if (!prev || dayKey(new Date(prev.ts)) !== dayKey(date)) {
    nodes.push(divider("day", dayLabel(date)));
    breaks = true;
  }
  if (firstFrom(room.breakSeq, prev, msg)) {
    nodes.push(divider("break", "Reconnected — reloaded what you missed"));
    breaks = true;
  }
  if (firstFrom(room.markerSeq, prev, msg)) {
    const marker = divider("new-marker", "New messages");
    marker.id = "new-marker";
    nodes.push(marker);
    breaks = true;
  }
  const cont = !breaks && continues(prev, msg);
  const li = h("li", cont ? "msg cont" : "msg");
  li.dataset.seq = String(msg.seq);
  li.dataset.user = msg.user;
  if (msg.user === ME) li.classList.add("mine");
  if (cont) {
    li.append(timeEl(date, "gutter-time", clockTime.format(date)));
  } else {
    const meta = h("div", "meta");
    meta.append(h("span", "author", msg.user), timeEl(date, "ts"));
    li.append(avatar(msg.user), meta);
  }
  markRow(li, msg);
  li.append(messageBody(room, msg), reactionsRow(room, msg), actionsBar(room, msg));
  nodes.push(li);
  return nodes;
}

/** The first message row visible at the top of the pane, and its offset from that top. */
export function scrollAnchor() {
  const top = ui.scroller.getBoundingClientRect().top;
  for (const row of ui.messages.querySelectorAll("li[data-seq]")) {
    const rect = row.getBoundingClientRect();
    if (rect.bottom > top) return { seq: row.dataset.seq, offset: rect.top - top };
  }
  return null;
}

/** Scroll so the anchor row sits where it sat before the list changed above it. */
export function restoreAnchor(anchor) {
  const row = anchor && ui.messages.querySelector(`li[data-seq="${anchor.seq}"]`);
  if (!row) return;
  ui.scroller.scrollTop += row.getBoundingClientRect().top - ui.scroller.getBoundingClientRect().top - anchor.offset;
}

export function renderMessages({ toBottom = false, anchor = null } = {}) {
  const room = rooms.get(state.active);
  if (!room) return;
  applyRole();
  // Once followed the room exists: a role asked for earlier could meet a 404.
  if (client.lastSeq(room.slug) !== null) loadRole(room.slug);
  const nodes = [];
  let prev = null;
  for (const msg of room.list) {
    nodes.push(...messageNodes(room, prev, msg));
    prev = msg;
  }
  // A whole-list render (room switch, older page) is not news: keep screen readers quiet.
  ui.messages.setAttribute("aria-live", "off");
  ui.messages.replaceChildren(...nodes);
  requestAnimationFrame(() => ui.messages.setAttribute("aria-live", "polite"));
  renderHistoryStatus(room);
  if (toBottom) scrollToBottom();
  else if (anchor) restoreAnchor(anchor);
}

export function renderHistoryStatus(room) {
  ui.historyStatus.replaceChildren();
  if (room.loading) ui.historyStatus.append(h("span", "spinner"), h("span", "", "Loading messages…"));
  else if (room.atStart) {
    const intro = h("div", "room-intro");
    const what = room.direct ? `your conversation with ${room.people.join(", ")}` : `#${room.slug}`;
    intro.append(h("strong", "", `This is the very beginning of ${what}.`));
    intro.append(h("span", "", room.private ? " Only members can see it." : " Everyone can join it."));
    ui.historyStatus.append(intro);
  }
}

export function appendLive(room, msg) {
  // A window of older history is on screen (showAround): the newest come back with "Jump to latest".
  if (room.detached) return;
  const prev = room.list[room.list.length - 1];
  if (!storeMessage(room, msg)) return;
  if (room.slug !== state.active) return;
  if (prev && prev.seq > msg.seq) return renderMessages({ anchor: scrollAnchor() });
  const atBottom = isAtBottom();
  const reading = atBottom && !document.hidden;
  if (!reading && msg.user !== ME && room.markerSeq === null) room.markerSeq = msg.seq;
  ui.messages.append(...messageNodes(room, prev, msg));
  if (atBottom || msg.user === ME) scrollToBottom();
  else {
    state.newWhileAway += 1;
    ui.jumpNew.textContent = `${state.newWhileAway} new message${state.newWhileAway === 1 ? "" : "s"} ↓`;
    ui.jumpNew.hidden = false;
  }
}

/**
 * Show `messages`, the history around `seq` (GET /api/rooms/<slug>/messages?around=), in
 * place of the room's list, scrolled to `seq` and highlighted for a moment. Older pages
 * still load on scrolling up; unless the window `reachesEnd`, the newest come back with
 * the jump button.
 */
export function showAround(room, messages, seq, reachesEnd) {
  room.list = [];
  room.seqs = new Set();
  for (const msg of messages) storeMessage(room, msg);
  room.loaded = true;
  room.atStart = room.list[0]?.seq === 1;
  room.markerSeq = null;
  room.detached = !reachesEnd;
  renderMessages();
  ui.jumpNew.textContent = "Jump to latest ↓";
  ui.jumpNew.hidden = !room.detached;
  const row = ui.messages.querySelector(`li.msg[data-seq="${seq}"]`);
  if (!row) return;
  row.scrollIntoView({ block: "center" });
  row.classList.add("found");
  setTimeout(() => row.classList.remove("found"), FOUND_SHOW_MS);
}

/** Leave a window of older history for the room's newest messages. */
export function backToLatest(room) {
  room.list = [];
  room.seqs = new Set();
  room.loaded = room.atStart = room.detached = false;
  ui.jumpNew.hidden = true;
  renderMessages();
  loadOlder(room);
}

export async function loadOlder(room) {
  if (room.loading || room.atStart) return;
  room.loading = true;
  if (room.slug === state.active) renderHistoryStatus(room);
  const before = room.list.length ? room.list[0].seq : null;
  try {
    const messages = await client.history(room.slug, before, PAGE);
    const anchor = room.slug === state.active ? scrollAnchor() : null;
    const first = !room.loaded;
    for (const msg of messages) storeMessage(room, msg);
    room.loaded = true;
    room.atStart = messages.length < PAGE || room.list[0]?.seq === 1;
    room.loading = false;
    if (room.slug === state.active) {
      renderMessages(first ? { toBottom: true } : { anchor });
      if (first) markRead();
      maybeLoadMore();
    }
  } catch (err) {
    room.loading = false;
    if (room.slug === state.active) {
      renderHistoryStatus(room);
      if (err.code === "forbidden" || err.code === "not_found") showRoomProblem(room.slug, err.code, err.message);
    }
  }
}

/** Keep paging while the loaded history does not even fill the viewport. */
export function maybeLoadMore() {
  const room = rooms.get(state.active);
  if (room && !room.atStart && ui.scroller.scrollTop < TOP_PREFETCH_PX) loadOlder(room);
}

export function isAtBottom() {
  const s = ui.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < BOTTOM_SLACK_PX;
}

export function scrollToBottom() {
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
}

export function markRead() {
  const room = rooms.get(state.active);
  if (!room || room.detached || document.hidden || !isAtBottom()) return;
  state.newWhileAway = 0;
  ui.jumpNew.hidden = true;
  const last = client.lastSeq(room.slug) ?? room.list[room.list.length - 1]?.seq;
  if (markReadUpTo(room.slug, last)) renderRoomList();
}

// --- pending sends -----------------------------------------------------------------------

export function renderPending() {
  const items = [...pendingSends.values()].filter((p) => p.room === state.active);
  ui.pending.replaceChildren(...items.map(pendingNode));
}

export function pendingNode(p) {
  // Offline, a message waits in the client and goes out (once, by its key) after reconnecting.
  const waiting = p.status !== "failed" && client.state !== "online" && client.state !== "catching-up";
  const status = p.status === "failed" ? "failed" : waiting ? "waiting" : "sending";
  const li = h("li", `msg mine pending ${status}`);
  li.dataset.ref = p.ref;
  li.dataset.status = status;
  const meta = h("div", "meta");
  meta.append(h("span", "author", ME));
  if (p.status === "failed") {
    meta.append(h("span", "status", publishProblem(p)));
    const retry = h("button", "link-btn", "Retry");
    retry.type = "button";
    retry.addEventListener("click", () => client.retry(p.ref));
    const discard = h("button", "link-btn", "Discard");
    discard.type = "button";
    discard.addEventListener("click", () => client.discard(p.ref));
    meta.append(retry, discard);
  } else {
    meta.append(h("span", "status", waiting ? "Pending: sends when you are back online" : "sending…"));
  }
  li.append(avatar(ME), meta, h("div", "body", p.body));
  return li;
}

ui.scroller.addEventListener("scroll", () => {
  if (ui.scroller.scrollTop < TOP_PREFETCH_PX) {
    const room = rooms.get(state.active);
    if (room && room.loaded) loadOlder(room);
  }
  if (isAtBottom()) markRead();
}, { passive: true });

ui.jumpNew.addEventListener("click", () => {
  const room = rooms.get(state.active);
  if (room?.detached) return backToLatest(room);
  scrollToBottom();
  markRead();
  ui.composer.focus();
});
