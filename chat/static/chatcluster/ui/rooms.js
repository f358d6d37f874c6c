// The rooms sidebar: room list with unread badges, create/join forms, the room header,
// switching rooms (with history and deep links), and rooms that cannot be opened.

import { ME, MAX_ROOMS, client, rooms, state } from "../state.js";
import { learnRead, markReadUpTo, readUpTo } from "../reads.js";
import { ui, h, icon, toast } from "../dom.js";
import { api } from "../api.js";
import { renderMessages, renderPending, loadOlder, markRead } from "./messages.js";
import { renderPresence, renderTyping } from "./presence.js";

const SLUG_RE = /^[a-z0-9_-]{1,64}$/;
export const LAST_ROOM_KEY = `relay:${ME}:room`;

export function ensureRoom(slug, info = {}) {
  let room = rooms.get(slug);
  if (!room) {
    room = {
      slug, title: slug, private: false,
      list: [], seqs: new Set(), // loaded messages, ascending by seq
      loaded: false, atStart: false, loading: false,
      latest: 0, markerSeq: null, breakSeq: null, presence: [], typers: new Map(),
    };
    rooms.set(slug, room);
    client.subscribe(slug);
  }
  if (info.seq !== undefined) room.latest = Math.max(room.latest, info.seq);
  if (info.title) room.title = info.title;
  if (info.private !== undefined) room.private = info.private;
  return room;
}

export function roomItem(slug) {
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

/** Messages past the user's read marker; none for the room in view (it has its own marker). */
export function unreadOf(room) {
  const read = readUpTo(room.slug);
  if (read === undefined || (room.slug === state.active && !document.hidden)) return 0;
  return Math.max(0, room.latest - read);
}

/** A room seen for the first time (no marker on the server): its past is not news. */
export function baselineRead(room) {
  if (state.roomsLoaded && readUpTo(room.slug) === undefined) markReadUpTo(room.slug, room.latest);
}

/** Update the room list in place, so keyboard focus survives unread counts changing. */
export function renderRoomList() {
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
    const unread = unreadOf(room);
    const extras = [room.private && "private", unread && `${unread} unread`].filter(Boolean);
    extra.textContent = extras.length ? ` (${extras.join(", ")})` : "";
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.hidden = !unread;
    link.classList.toggle("has-unread", unread > 0);
    if (room.slug === state.active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const total = items.reduce((sum, r) => sum + unreadOf(r), 0);
  document.title = `${total ? `(${total}) ` : ""}${state.active ? `#${state.active} · ` : ""}Relay`;
}

// GET /api/rooms answers in pages of at most this many rooms, with the cursor of the next.
const ROOMS_PAGE = 200;

/** The rooms the sidebar lists: page after page, up to the MAX_ROOMS one socket may follow. */
export async function fetchRooms() {
  const found = [];
  let after = null;
  do {
    const query = new URLSearchParams({ limit: String(Math.min(ROOMS_PAGE, MAX_ROOMS - found.length)) });
    if (after) query.set("after", after);
    const page = await api(`/api/rooms?${query}`);
    found.push(...page.rooms);
    after = page.next;
  } while (after && found.length < MAX_ROOMS);
  return found;
}

export async function refreshRooms() {
  for (const info of await fetchRooms()) {
    learnRead(info.slug, info.read);
    ensureRoom(info.slug, info);
  }
  state.roomsLoaded = true;
  for (const room of rooms.values()) baselineRead(room);
  renderRoomList();
  if (state.active) renderHeader();
}

export function selectRoom(slug, { push = true, replace = false } = {}) {
  const room = ensureRoom(slug);
  const unread = state.active === slug ? 0 : unreadOf(room);
  if (state.active && state.active !== slug) {
    const prev = rooms.get(state.active);
    if (prev) prev.markerSeq = null;
  }
  state.active = slug;
  localStorage.setItem(LAST_ROOM_KEY, slug);
  const url = `/rooms/${slug}/`;
  if (replace) history.replaceState({ room: slug }, "", url);
  else if (push && location.pathname !== url) history.pushState({ room: slug }, "", url);
  if (unread) room.markerSeq = readUpTo(slug) + 1;
  state.newWhileAway = 0;
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

export function renderHeader() {
  const room = rooms.get(state.active);
  if (!room) return;
  ui.title.replaceChildren(icon(room.private ? "lock" : "hash"), h("span", "", room.title));
  ui.topic.textContent = room.title !== room.slug ? `#${room.slug}` : room.private ? "Private room" : "Public room";
}

export function problemText(slug, code, detail) {
  if (code === "forbidden") return [`#${slug} is private`, "Only its members can read it. Ask one of them to add you."];
  if (code === "not_found") return [`#${slug} does not exist`, "Check the name, or create it from the sidebar."];
  return [`#${slug} cannot be opened`, detail || "Try again in a moment."];
}

export function showRoomProblem(slug, code, detail) {
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
