// The chat page: rooms sidebar, message pane, presence, composer. All protocol work is
// in client.js; this module only turns its events into DOM. User data goes into the
// page through textContent and attributes only, never through innerHTML.

import { ChatClient } from "./client.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
const ME = config.user;
const MAX_BODY = config.maxBody;
const PAGE = 50;
// Messages from one author closer together than this share one header.
const GROUP_GAP_MS = 5 * 60 * 1000;
// How long "X is typing…" stays without a fresh typing frame (senders repeat every 3 s).
const TYPING_SHOW_MS = 4000;
// Within this many pixels of the bottom counts as "reading the newest messages".
const BOTTOM_SLACK_PX = 48;
// Start fetching older history this close to the top, before the user hits it.
const TOP_PREFETCH_PX = 200;
const SLUG_RE = /^[a-z0-9_-]{1,64}$/;
const READ_KEY = `relay:${ME}:read`;
const LAST_ROOM_KEY = `relay:${ME}:room`;

const $ = (id) => document.getElementById(id);
const ui = {
  banner: $("banner"), bannerText: $("banner-text"), bannerRetry: $("banner-retry"),
  roomList: $("room-list"), joinForm: $("join-room-form"), newForm: $("new-room-form"), newError: $("new-room-error"),
  title: $("room-title"), topic: $("room-topic"), scroller: $("scroller"), messages: $("messages"), pending: $("pending"),
  historyStatus: $("history-status"), jumpNew: $("jump-new"), typing: $("typing"), composerForm: $("composer-form"),
  composer: $("composer"), charCount: $("char-count"), online: $("online"), onlineCount: $("online-count"),
  membersToggle: $("members-toggle"), membersCount: $("members-count"), sidebarToggle: $("sidebar-toggle"),
  scrim: $("scrim"), empty: $("room-empty"), emptyTitle: $("room-empty-title"), emptyText: $("room-empty-text"),
  toast: $("toast"),
};

const client = new ChatClient();
const rooms = new Map(); // slug -> room view state, see ensureRoom
const pendingSends = new Map(); // ref -> publish detail from the client
let active = null;
let readSeqs = loadJson(READ_KEY, {});
let newWhileAway = 0;

// --- small helpers -----------------------------------------------------------------

function loadJson(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const ICONS = {
  hash: "M9 3 7 21M17 3l-2 18M4 8h17M3 16h17",
  lock: "M6 11h12v10H6zM8 11V7a4 4 0 0 1 8 0v4",
};

function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

function hue(name) {
  let n = 0;
  for (const ch of name) n = (n * 31 + ch.codePointAt(0)) >>> 0;
  return `hue-${n % 8}`;
}

function avatar(name) {
  const node = h("span", `avatar ${hue(name)}`, [...name][0]?.toUpperCase() ?? "?");
  node.setAttribute("aria-hidden", "true");
  return node;
}

function toast(text) {
  ui.toast.textContent = text;
  ui.toast.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (ui.toast.hidden = true), 5000);
}

function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : (document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/) ?? [])[1] ?? "";
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    ...options,
    headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
  });
  if (response.status === 401) goToLogin();
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(data.detail || `HTTP ${response.status}`), { code: data.error });
  return data;
}

function goToLogin() {
  window.location.assign(`/accounts/login/?next=${encodeURIComponent(window.location.pathname)}`);
}

// --- times ---------------------------------------------------------------------------

const fullTime = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const clockTime = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const shortDay = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const shortDate = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

function relative(date, now = Date.now()) {
  const secs = Math.round((now - date.getTime()) / 1000);
  if (secs < 45) return "just now";
  if (secs < 3600) return `${Math.max(1, Math.round(secs / 60))} min ago`;
  if (secs < 6 * 3600) return `${Math.round(secs / 3600)} h ago`;
  if (dayKey(date) === dayKey(new Date(now))) return `today ${clockTime.format(date)}`;
  if (secs < 6 * 86400) return `${shortDay.format(date)} ${clockTime.format(date)}`;
  return `${shortDate.format(date)} ${clockTime.format(date)}`;
}

function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

function dayLabel(date) {
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(date) === dayKey(today)) return "Today";
  if (dayKey(date) === dayKey(yesterday)) return "Yesterday";
  return dayFormat.format(date);
}

function timeEl(date, className, text) {
  const node = h("time", className, text ?? relative(date));
  node.dateTime = date.toISOString();
  node.title = fullTime.format(date);
  if (text === undefined) node.dataset.relative = "";
  return node;
}

function refreshTimes() {
  for (const node of document.querySelectorAll("time[data-relative]")) {
    node.textContent = relative(new Date(node.dateTime));
  }
}

// --- rooms -----------------------------------------------------------------------------

function ensureRoom(slug, info = {}) {
  let room = rooms.get(slug);
  if (!room) {
    room = {
      slug, title: slug, private: false,
      list: [], seqs: new Set(), // loaded messages, ascending by seq
      loaded: false, atStart: false, loading: false,
      unread: 0, markerSeq: null, breakSeq: null, presence: [], typers: new Map(),
    };
    rooms.set(slug, room);
    client.subscribe(slug);
  }
  if (info.title) room.title = info.title;
  if (info.private !== undefined) room.private = info.private;
  return room;
}

function roomItem(slug) {
  const li = h("li", "room-item");
  li.dataset.room = slug;
  const link = h("a", "room-link");
  link.href = `/rooms/${slug}/`;
  const badge = h("span", "unread");
  badge.setAttribute("aria-hidden", "true");
  link.append(icon("hash"), h("span", "room-name"), h("span", "visually-hidden room-extra"), badge);
  li.append(link);
  return li;
}

/** Update the room list in place, so keyboard focus survives unread counts changing. */
function renderRoomList() {
  const items = [...rooms.values()].sort((a, b) => a.slug.localeCompare(b.slug));
  const current = [...ui.roomList.children];
  if (current.map((li) => li.dataset.room).join("\n") !== items.map((r) => r.slug).join("\n")) {
    const bySlug = new Map(current.map((li) => [li.dataset.room, li]));
    ui.roomList.replaceChildren(...items.map((room) => bySlug.get(room.slug) ?? roomItem(room.slug)));
  }
  for (const li of ui.roomList.children) {
    const room = rooms.get(li.dataset.room);
    const link = li.firstElementChild;
    const [svg, name, extra, badge] = link.children;
    if (link.classList.contains("private") !== room.private) {
      svg.replaceWith(icon(room.private ? "lock" : "hash"));
      link.classList.toggle("private", room.private);
    }
    name.textContent = room.title;
    const extras = [room.private && "private", room.unread && `${room.unread} unread`].filter(Boolean);
    extra.textContent = extras.length ? ` (${extras.join(", ")})` : "";
    badge.textContent = room.unread > 99 ? "99+" : String(room.unread);
    badge.hidden = !room.unread;
    link.classList.toggle("has-unread", room.unread > 0);
    if (room.slug === active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const total = items.reduce((sum, r) => sum + r.unread, 0);
  document.title = `${total ? `(${total}) ` : ""}${active ? `#${active} · ` : ""}Relay`;
}

async function refreshRooms() {
  const data = await api("/api/rooms");
  for (const info of data.rooms) ensureRoom(info.slug, info);
  renderRoomList();
  if (active) renderHeader();
}

function selectRoom(slug, { push = true, replace = false } = {}) {
  const room = ensureRoom(slug);
  if (active && active !== slug) {
    const prev = rooms.get(active);
    if (prev) prev.markerSeq = null;
  }
  active = slug;
  localStorage.setItem(LAST_ROOM_KEY, slug);
  const url = `/rooms/${slug}/`;
  if (replace) history.replaceState({ room: slug }, "", url);
  else if (push && location.pathname !== url) history.pushState({ room: slug }, "", url);
  if (room.unread && readSeqs[slug] !== undefined) room.markerSeq = readSeqs[slug] + 1;
  newWhileAway = 0;
  ui.jumpNew.hidden = true;
  ui.empty.hidden = true;
  ui.composer.disabled = false;
  ui.composer.placeholder = `Message #${slug}`;
  document.body.classList.remove("sidebar-open");
  ui.sidebarToggle.setAttribute("aria-expanded", "false");
  renderHeader();
  renderMessages({ toBottom: true });
  renderPending();
  renderPresence();
  renderTyping();
  renderRoomList();
  if (!room.loaded) loadOlder(room);
  else markRead();
}

function renderHeader() {
  const room = rooms.get(active);
  if (!room) return;
  ui.title.replaceChildren(icon(room.private ? "lock" : "hash"), h("span", "", room.title));
  ui.topic.textContent = room.title !== room.slug ? `#${room.slug}` : room.private ? "Private room" : "Public room";
}

function problemText(slug, code, detail) {
  if (code === "forbidden") return [`#${slug} is private`, "Only its members can read it. Ask one of them to add you."];
  if (code === "not_found") return [`#${slug} does not exist`, "Check the name, or create it from the sidebar."];
  return [`#${slug} cannot be opened`, detail || "Try again in a moment."];
}

function showRoomProblem(slug, code, detail) {
  const [heading, text] = problemText(slug, code, detail);
  ui.empty.hidden = false;
  ui.emptyTitle.textContent = heading;
  ui.emptyText.textContent = text;
  ui.title.replaceChildren(icon("lock"), h("span", "", slug));
  ui.topic.textContent = "";
  ui.messages.replaceChildren();
  ui.pending.replaceChildren();
  ui.historyStatus.replaceChildren();
  ui.composer.disabled = true;
  ui.composer.placeholder = "You cannot post here";
  renderPresence();
}

// --- messages ----------------------------------------------------------------------------

function storeMessage(room, msg) {
  if (room.seqs.has(msg.seq)) return false;
  room.seqs.add(msg.seq);
  const last = room.list[room.list.length - 1];
  if (!last || last.seq < msg.seq) room.list.push(msg);
  else {
    room.list.push(msg);
    room.list.sort((a, b) => a.seq - b.seq);
  }
  return true;
}

function continues(prev, msg) {
  if (!prev || prev.user !== msg.user) return false;
  const a = new Date(prev.ts);
  const b = new Date(msg.ts);
  return b - a < GROUP_GAP_MS && dayKey(a) === dayKey(b);
}

function divider(className, text) {
  const li = h("li", `divider ${className}`);
  li.setAttribute("role", "separator");
  li.append(h("span", "", text));
  return li;
}

/** The elements for `msg`: dividers it needs, then the message row itself. */
function messageNodes(room, prev, msg) {
  const nodes = [];
  const date = new Date(msg.ts);
  let breaks = false;
  if (!prev || dayKey(new Date(prev.ts)) !== dayKey(date)) {
    nodes.push(divider("day", dayLabel(date)));
    breaks = true;
  }
  if (room.breakSeq === msg.seq) {
    nodes.push(divider("break", "Reconnected — reloaded what you missed"));
    breaks = true;
  }
  if (room.markerSeq === msg.seq) {
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
  li.append(h("div", "body", msg.body));
  nodes.push(li);
  return nodes;
}

/** The first message row visible at the top of the pane, and its offset from that top. */
function scrollAnchor() {
  const top = ui.scroller.getBoundingClientRect().top;
  for (const row of ui.messages.querySelectorAll("li[data-seq]")) {
    const rect = row.getBoundingClientRect();
    if (rect.bottom > top) return { seq: row.dataset.seq, offset: rect.top - top };
  }
  return null;
}

/** Scroll so the anchor row sits where it sat before the list changed above it. */
function restoreAnchor(anchor) {
  const row = anchor && ui.messages.querySelector(`li[data-seq="${anchor.seq}"]`);
  if (!row) return;
  ui.scroller.scrollTop += row.getBoundingClientRect().top - ui.scroller.getBoundingClientRect().top - anchor.offset;
}

function renderMessages({ toBottom = false, anchor = null } = {}) {
  const room = rooms.get(active);
  if (!room) return;
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

function renderHistoryStatus(room) {
  ui.historyStatus.replaceChildren();
  if (room.loading) ui.historyStatus.append(h("span", "spinner"), h("span", "", "Loading messages…"));
  else if (room.atStart) {
    const intro = h("div", "room-intro");
    intro.append(h("strong", "", `This is the very beginning of #${room.slug}.`));
    intro.append(h("span", "", room.private ? " Only members can see it." : " Everyone can join it."));
    ui.historyStatus.append(intro);
  }
}

function appendLive(room, msg) {
  const prev = room.list[room.list.length - 1];
  if (!storeMessage(room, msg)) return;
  if (room.slug !== active) return;
  if (prev && prev.seq > msg.seq) return renderMessages({ anchor: scrollAnchor() });
  const atBottom = isAtBottom();
  const reading = atBottom && !document.hidden;
  if (!reading && msg.user !== ME && room.markerSeq === null) room.markerSeq = msg.seq;
  ui.messages.append(...messageNodes(room, prev, msg));
  if (atBottom || msg.user === ME) scrollToBottom();
  else {
    newWhileAway += 1;
    ui.jumpNew.textContent = `${newWhileAway} new message${newWhileAway === 1 ? "" : "s"} ↓`;
    ui.jumpNew.hidden = false;
  }
}

async function loadOlder(room) {
  if (room.loading || room.atStart) return;
  room.loading = true;
  if (room.slug === active) renderHistoryStatus(room);
  const before = room.list.length ? room.list[0].seq : null;
  try {
    const messages = await client.history(room.slug, before, PAGE);
    const anchor = room.slug === active ? scrollAnchor() : null;
    const first = !room.loaded;
    for (const msg of messages) storeMessage(room, msg);
    room.loaded = true;
    room.atStart = messages.length < PAGE || room.list[0]?.seq === 1;
    room.loading = false;
    if (room.slug === active) {
      renderMessages(first ? { toBottom: true } : { anchor });
      if (first) markRead();
      maybeLoadMore();
    }
  } catch (err) {
    room.loading = false;
    if (room.slug === active) {
      renderHistoryStatus(room);
      if (err.code === "forbidden" || err.code === "not_found") showRoomProblem(room.slug, err.code, err.message);
    }
  }
}

/** Keep paging while the loaded history does not even fill the viewport. */
function maybeLoadMore() {
  const room = rooms.get(active);
  if (room && !room.atStart && ui.scroller.scrollTop < TOP_PREFETCH_PX) loadOlder(room);
}

function isAtBottom() {
  const s = ui.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < BOTTOM_SLACK_PX;
}

function scrollToBottom() {
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
}

function markRead() {
  const room = rooms.get(active);
  if (!room || document.hidden || !isAtBottom()) return;
  newWhileAway = 0;
  ui.jumpNew.hidden = true;
  const last = client.lastSeq(room.slug) ?? room.list[room.list.length - 1]?.seq;
  if (last !== undefined && last !== null) {
    readSeqs[room.slug] = last;
    localStorage.setItem(READ_KEY, JSON.stringify(readSeqs));
  }
  if (room.unread) {
    room.unread = 0;
    renderRoomList();
  }
}

// --- pending sends -----------------------------------------------------------------------

function renderPending() {
  const items = [...pendingSends.values()].filter((p) => p.room === active);
  ui.pending.replaceChildren(...items.map(pendingNode));
}

function pendingNode(p) {
  const li = h("li", `msg mine pending ${p.status === "failed" ? "failed" : "sending"}`);
  li.dataset.ref = p.ref;
  const meta = h("div", "meta");
  meta.append(h("span", "author", ME));
  if (p.status === "failed") {
    meta.append(h("span", "status", `Not sent: ${p.error?.detail ?? "error"}`));
    const retry = h("button", "link-btn", "Retry");
    retry.type = "button";
    retry.addEventListener("click", () => client.retry(p.ref));
    const discard = h("button", "link-btn", "Discard");
    discard.type = "button";
    discard.addEventListener("click", () => client.discard(p.ref));
    meta.append(retry, discard);
  } else {
    meta.append(h("span", "status", "sending…"));
  }
  li.append(avatar(ME), meta, h("div", "body", p.body));
  return li;
}

// --- presence and typing -------------------------------------------------------------------

function renderPresence() {
  const room = rooms.get(active);
  const users = room ? room.presence : [];
  ui.online.replaceChildren(
    ...users.map((user) => {
      const li = h("li", "member");
      li.dataset.user = user;
      li.append(avatar(user), h("span", "member-name", user));
      if (user === ME) li.append(h("span", "you", "you"));
      return li;
    }),
  );
  ui.onlineCount.textContent = String(users.length);
  ui.membersCount.textContent = String(users.length);
}

function renderTyping() {
  const room = rooms.get(active);
  const now = Date.now();
  const names = room ? [...room.typers].filter(([, until]) => until > now).map(([user]) => user) : [];
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = "Several people are typing…";
  ui.typing.textContent = text;
  ui.typing.classList.toggle("active", Boolean(text));
}

// --- banner ------------------------------------------------------------------------------

let bannerState = { state: "connecting" };

function renderBanner() {
  const { state, retryAt, code } = bannerState;
  ui.banner.dataset.state = state;
  ui.bannerRetry.hidden = state !== "reconnecting";
  let text = "Connecting…";
  if (state === "online") text = "Online";
  else if (state === "catching-up") text = "Catching up…";
  else if (state === "offline") text = code === 4403 ? "Connection refused: open the chat from its own address" : "Offline";
  else if (state === "reconnecting") {
    const secs = retryAt ? Math.ceil((retryAt - Date.now()) / 1000) : 0;
    text = secs > 0 ? `Reconnecting in ${secs} s…` : "Reconnecting…";
  }
  if (ui.bannerText.textContent !== text) ui.bannerText.textContent = text;
}

// --- client events -----------------------------------------------------------------------

client.addEventListener("state", (ev) => {
  bannerState = ev.detail;
  document.body.dataset.conn = ev.detail.state;
  renderBanner();
});

client.addEventListener("unauthorized", goToLogin);

client.addEventListener("message", ({ detail: msg }) => {
  const room = rooms.get(msg.room);
  if (!room) return;
  room.typers.delete(msg.user);
  appendLive(room, msg);
  // The open room shows its own "new messages" button; its badge counts only while the tab is hidden.
  const seen = room.slug === active && !document.hidden;
  if (msg.user !== ME && !seen && msg.seq > (readSeqs[room.slug] ?? 0)) {
    room.unread += 1;
    renderRoomList();
  }
  if (room.slug === active) {
    renderTyping();
    markRead();
  }
});

client.addEventListener("subscribed", ({ detail }) => {
  const room = rooms.get(detail.room);
  if (!room || !detail.fresh) return;
  const read = readSeqs[room.slug];
  if (room.slug !== active && read !== undefined) room.unread = Math.max(0, detail.seq - read);
  else if (read === undefined && room.slug !== active) {
    readSeqs[room.slug] = detail.seq; // first sight of the room: nothing counts as unread
  }
  renderRoomList();
});

// The server could not replay everything we missed: reload the latest page and mark
// where our old view ended, so the user sees there was a break.
client.addEventListener("reset", ({ detail }) => {
  const room = rooms.get(detail.room);
  if (!room) return;
  const heldUpTo = room.list[room.list.length - 1]?.seq ?? 0;
  room.list = [];
  room.seqs = new Set();
  room.loaded = room.atStart = false;
  room.markerSeq = null;
  room.breakSeq = null;
  const reload = () =>
    loadOlder(room).then(() => {
      room.breakSeq = room.seqs.has(heldUpTo + 1) ? heldUpTo + 1 : room.list[0]?.seq ?? null;
      if (room.slug === active) renderMessages({ toBottom: true });
    });
  if (room.slug === active) reload();
});

client.addEventListener("presence", ({ detail }) => {
  const room = rooms.get(detail.room);
  if (!room) return;
  room.presence = detail.users;
  if (room.slug === active) renderPresence();
});

client.addEventListener("typing", ({ detail }) => {
  const room = rooms.get(detail.room);
  if (!room || detail.user === ME) return;
  room.typers.set(detail.user, Date.now() + TYPING_SHOW_MS);
  if (room.slug === active) renderTyping();
  setTimeout(renderTyping, TYPING_SHOW_MS + 50);
});

client.addEventListener("publish", ({ detail }) => {
  if (detail.status === "done" || detail.status === "discarded") pendingSends.delete(detail.ref);
  else pendingSends.set(detail.ref, detail);
  if (detail.status === "failed" && detail.room !== active) toast(`A message to #${detail.room} was not sent: ${detail.error?.detail}`);
  if (detail.room === active) {
    const atBottom = isAtBottom();
    renderPending();
    if (atBottom) scrollToBottom();
  }
});

client.addEventListener("room-error", ({ detail }) => {
  const room = rooms.get(detail.room);
  rooms.delete(detail.room);
  renderRoomList();
  if (detail.room === active) showRoomProblem(detail.room, detail.code, detail.detail);
  else if (room) toast(problemText(detail.room, detail.code, detail.detail).join(". "));
});

client.addEventListener("error", ({ detail }) => {
  if (detail.code === "rate_limited") toast("Slow down a little: you are sending too fast.");
  else if (detail.detail) toast(detail.detail);
});

// --- DOM events ----------------------------------------------------------------------------

ui.roomList.addEventListener("click", (ev) => {
  const link = ev.target.closest("a.room-link");
  if (!link || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  selectRoom(link.closest("li").dataset.room);
  ui.composer.focus();
});

window.addEventListener("popstate", () => {
  const match = location.pathname.match(/^\/rooms\/([a-z0-9_-]{1,64})\/$/);
  if (match) selectRoom(match[1], { push: false });
});

ui.scroller.addEventListener("scroll", () => {
  if (ui.scroller.scrollTop < TOP_PREFETCH_PX) {
    const room = rooms.get(active);
    if (room && room.loaded) loadOlder(room);
  }
  if (isAtBottom()) markRead();
}, { passive: true });

ui.jumpNew.addEventListener("click", () => {
  scrollToBottom();
  markRead();
  ui.composer.focus();
});

function sendComposer() {
  const body = ui.composer.value;
  if (!active || !body.trim()) return;
  if (body.length > MAX_BODY) return toast(`Messages are limited to ${MAX_BODY} characters.`);
  client.publish(active, body);
  ui.composer.value = "";
  composerChanged();
  scrollToBottom();
}

function composerChanged() {
  const c = ui.composer;
  c.style.height = "auto";
  c.style.height = `${Math.min(c.scrollHeight, 200)}px`;
  const left = MAX_BODY - c.value.length;
  ui.charCount.textContent = left < Math.min(200, MAX_BODY / 5) ? `${left} left` : "";
  ui.charCount.classList.toggle("over", left < 0);
}

ui.composer.maxLength = MAX_BODY;
ui.composer.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    sendComposer();
  }
});
ui.composer.addEventListener("input", () => {
  composerChanged();
  if (active && ui.composer.value.trim()) client.typing(active);
});
ui.composerForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  sendComposer();
  ui.composer.focus();
});

function slugFrom(input) {
  return input.value.trim().toLowerCase().replace(/^#/, "").replace(/\s+/g, "-");
}

ui.joinForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = ui.joinForm.elements.room;
  const slug = slugFrom(input);
  if (!SLUG_RE.test(slug)) return toast("Room names use a-z, 0-9, - and _ (up to 64).");
  input.value = "";
  selectRoom(slug);
  renderRoomList();
  setTimeout(() => refreshRooms().catch(() => {}), 1000); // pick up the title of a room new to us
});

ui.newForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ui.newForm.elements;
  const slug = slugFrom(form.slug);
  ui.newError.textContent = "";
  if (!SLUG_RE.test(slug)) {
    ui.newError.textContent = "Use 1-64 characters: a-z, 0-9, - and _.";
    return form.slug.focus();
  }
  if (rooms.has(slug)) {
    ui.newError.textContent = `#${slug} already exists: it is in your list.`;
    return form.slug.focus();
  }
  const button = ui.newForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const room = await api("/api/rooms", {
      method: "POST",
      body: JSON.stringify({ slug, title: form.title.value.trim(), private: form.private.checked }),
    });
    ui.newForm.reset();
    ensureRoom(room.slug, room);
    selectRoom(room.slug);
    ui.composer.focus();
  } catch (err) {
    ui.newError.textContent = err.message;
  } finally {
    button.disabled = false;
  }
});

function setPanel(name, open) {
  document.body.classList.toggle(`${name}-open`, open);
  const toggle = name === "sidebar" ? ui.sidebarToggle : ui.membersToggle;
  toggle.setAttribute("aria-expanded", String(open));
}

ui.sidebarToggle.addEventListener("click", () => setPanel("sidebar", !document.body.classList.contains("sidebar-open")));
ui.membersToggle.addEventListener("click", () => setPanel("members", !document.body.classList.contains("members-open")));
ui.scrim.addEventListener("click", () => {
  setPanel("sidebar", false);
  setPanel("members", false);
});
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") {
    setPanel("sidebar", false);
    setPanel("members", false);
  }
});

ui.bannerRetry.addEventListener("click", () => client.reconnectNow());
window.addEventListener("online", () => client.reconnectNow());
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  client.reconnectNow();
  markRead();
  refreshRooms().catch(() => {});
});

setInterval(renderBanner, 250);
setInterval(refreshTimes, 30_000);

// --- start -----------------------------------------------------------------------------------

async function start() {
  client.connect();
  renderBanner();
  if (config.room) selectRoom(config.room, { replace: true });
  try {
    await refreshRooms();
  } catch (err) {
    toast(`Could not load rooms: ${err.message}`);
  }
  if (!config.room) {
    const remembered = localStorage.getItem(LAST_ROOM_KEY);
    const fallback = rooms.has("general") ? "general" : rooms.keys().next().value ?? "general";
    selectRoom(rooms.has(remembered) ? remembered : fallback, { replace: true });
  }
}

start();
