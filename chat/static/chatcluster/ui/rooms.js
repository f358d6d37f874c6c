// Rooms: which rooms the page holds and its socket follows (the joined ones plus the one
// on screen, nothing else), switching rooms (with history and deep links), landing,
// joining and leaving, the room header, the create/join forms, and rooms that cannot be
// opened. The sidebar's lists are ui/sidebar.js.

import { ME, MAX_ROOMS, DEFAULT_ROOM, client, rooms, state } from "../state.js";
import { learnRead, readUpTo } from "../reads.js";
import { ui, h, icon, avatar, toast } from "../dom.js";
import { api, post, query } from "../api.js";
import { renderMessages, renderPending, loadOlder, markRead, showAround, backToLatest } from "./messages.js";
import { renderPresence, renderTyping } from "./presence.js";
import { renderRoomList, countsOf, setBaseline, displayName, label, joinedRooms } from "./sidebar.js";
import { openDirectory } from "./directory.js";
import { confirmAction } from "./dialog.js";

export { renderRoomList };

const SLUG_RE = /^[a-z0-9_-]{1,64}$/;
export const LAST_ROOM_KEY = `relay:${ME}:room`;
const joinButton = document.getElementById("room-join");
const leaveButton = document.getElementById("room-leave");

// Bumped by every membership change made here: a joined list asked for before it is stale.
let membershipChanges = 0;

export function ensureRoom(slug, info = {}) {
  let room = rooms.get(slug);
  if (!room) {
    room = {
      slug, title: slug, private: false, direct: false, people: [], joined: false, role: null,
      baseSeq: 0, baseUnread: 0, baseMentions: 0, live: new Map(), // see ui/sidebar.js
      subscribed: false, everSubscribed: false, refused: null, joining: false,
      list: [], seqs: new Set(), // loaded messages, ascending by seq
      loaded: false, atStart: false, loading: false, detached: false,
      latest: 0, markerSeq: null, breakSeq: null, presence: [], typers: new Map(),
    };
    rooms.set(slug, room);
  }
  if (info.seq !== undefined) room.latest = Math.max(room.latest, info.seq);
  if (info.title) room.title = info.title;
  if (info.private !== undefined) room.private = info.private;
  if (info.direct !== undefined) room.direct = info.direct;
  if (info.people) room.people = [...info.people].sort();
  if (info.role !== undefined) room.role = info.role;
  return room;
}

/**
 * Follow the joined rooms and the room on screen, nothing else, and forget a previewed
 * room once it is off screen. One socket may follow MAX_ROOMS: a slot stays free for the
 * room on screen; joined rooms past the rest still list, with the counts of the last poll.
 */
export function syncSubscriptions() {
  const wanted = new Set(joinedRooms().slice(0, Math.max(0, MAX_ROOMS - 1)).map((r) => r.slug));
  if (state.active) wanted.add(state.active);
  for (const room of [...rooms.values()]) {
    const want = wanted.has(room.slug) && !room.refused;
    if (want && !room.subscribed) client.subscribe(room.slug);
    else if (!want && room.subscribed) client.unsubscribe(room.slug);
    room.subscribed = want;
    if (!room.joined && room.slug !== state.active) rooms.delete(room.slug);
  }
}

/** The user is now a member of `slug` (joined, created it, started a DM). */
export function adoptRoom(slug, info = {}) {
  membershipChanges += 1;
  const room = ensureRoom(slug, info);
  room.joined = true;
  room.refused = null;
  syncSubscriptions();
  renderRoomList();
  renderHeader();
  return room;
}

/** The rooms and DMs the user belongs to, with their counts, from the server. */
export async function refreshRooms() {
  const asked = membershipChanges;
  const found = [];
  let after = null;
  do {
    const page = await api(`/api/rooms?${query({ scope: "joined", after })}`);
    found.push(...page.rooms);
    after = page.next;
  } while (after);
  if (asked !== membershipChanges) return refreshRooms();
  const listed = new Set();
  for (const info of found) {
    listed.add(info.slug);
    learnRead(info.slug, info.read);
    const room = ensureRoom(info.slug, info);
    room.joined = true;
    setBaseline(room, info);
  }
  // Left on another device, or removed while the socket did not follow the room.
  for (const room of rooms.values()) if (room.joined && !listed.has(room.slug)) room.joined = false;
  state.roomsLoaded = true;
  syncSubscriptions();
  renderRoomList();
  renderHeader();
}

/** POST join; true once the user is a member. `quiet`: the user did not ask, so no toast. */
export async function joinRoom(slug, { quiet = false } = {}) {
  const existing = rooms.get(slug);
  if (existing?.joined) return true;
  if (existing) existing.joining = true;
  try {
    const answer = await post(`/api/rooms/${slug}/join`);
    adoptRoom(slug, { role: answer.role });
    refreshRooms().catch(() => {}); // its title and counts
    return true;
  } catch (err) {
    if (!quiet) toast(problemText(slug, err.code, err.message).join(". "));
    return false;
  } finally {
    if (rooms.get(slug)) rooms.get(slug).joining = false;
  }
}

/** Writing in a public room you only preview joins it, so its replies reach your sidebar. */
export function joinOnSend(slug) {
  const room = rooms.get(slug);
  if (room && state.roomsLoaded && !room.joined && !room.joining && !room.private) joinRoom(slug, { quiet: true });
}

export async function leaveRoom(slug) {
  const room = rooms.get(slug);
  if (!room?.joined) return;
  if (room.private) {
    const ask = { title: `Leave #${slug}?`, text: "It is private: only a member can add you again.", confirm: "Leave" };
    if (!(await confirmAction(ask))) return;
  }
  membershipChanges += 1;
  try {
    await post(`/api/rooms/${slug}/leave`);
  } catch (err) {
    return toast(`You cannot leave ${label(room)}: ${err.message}`);
  }
  room.joined = false;
  if (localStorage.getItem(LAST_ROOM_KEY) === slug) localStorage.removeItem(LAST_ROOM_KEY);
  // A public room stays on screen as a preview; a private one is not yours to read any more.
  if (slug === state.active && room.private) return land();
  syncSubscriptions();
  renderRoomList();
  renderHeader();
}

/** Where the page opens without a room in its address. */
export async function land() {
  const joined = joinedRooms();
  const remembered = localStorage.getItem(LAST_ROOM_KEY);
  const pick = joined.find((r) => r.slug === remembered) ?? joined[0];
  if (pick) return selectRoom(pick.slug, { replace: true });
  if (DEFAULT_ROOM && (await joinRoom(DEFAULT_ROOM, { quiet: true }))) return selectRoom(DEFAULT_ROOM, { replace: true });
  showNoRoom();
  openDirectory();
}

/** No room open: the user has none yet, and the directory is where to find one. */
export function showNoRoom() {
  state.active = null;
  syncSubscriptions();
  history.replaceState({}, "", "/");
  showEmpty("No room open", "Browse the public rooms to join one, or start a direct message.");
  ui.empty.classList.add("neutral");
  ui.title.replaceChildren();
  renderRoomList();
  renderPresence();
}

export function selectRoom(slug, { push = true, replace = false, around = null } = {}) {
  const room = ensureRoom(slug);
  const { unread } = state.active === slug ? { unread: 0 } : countsOf(room);
  if (state.active && state.active !== slug) {
    const prev = rooms.get(state.active);
    if (prev) prev.markerSeq = null;
  }
  state.active = slug;
  syncSubscriptions();
  localStorage.setItem(LAST_ROOM_KEY, slug);
  const url = `/rooms/${slug}/`;
  if (replace) history.replaceState({ room: slug }, "", url);
  else if (push && location.pathname !== url) history.pushState({ room: slug }, "", url);
  if (unread) room.markerSeq = (readUpTo(slug) ?? 0) + 1;
  state.newWhileAway = 0;
  ui.jumpNew.hidden = true;
  document.body.classList.remove("sidebar-open");
  ui.sidebarToggle.setAttribute("aria-expanded", "false");
  renderRoomList();
  if (room.refused) return showRoomProblem(slug, room.refused.code, room.refused.detail, room.refused);
  ui.empty.hidden = true;
  ui.composer.disabled = false;
  ui.composer.placeholder = `Message ${label(room)}`;
  renderHeader();
  if (around) showAround(room, around.messages, around.seq, around.reachesEnd);
  else if (room.detached) backToLatest(room);
  else {
    renderMessages({ toBottom: true });
    if (!room.loaded) loadOlder(room);
    else markRead();
  }
  renderPending();
  renderPresence();
  renderTyping();
}

export function renderHeader() {
  const room = rooms.get(state.active);
  joinButton.hidden = leaveButton.hidden = true;
  if (!room || room.refused) return;
  ui.title.replaceChildren(room.direct ? avatar(room.people[0] ?? ME) : icon(room.private ? "lock" : "hash"), h("span", "", displayName(room)));
  let topic = room.direct ? "Direct message" : room.title !== room.slug ? `#${room.slug}` : room.private ? "Private room" : "Public room";
  if (state.roomsLoaded && !room.joined && !room.private) topic += " · preview: join to keep it in your sidebar";
  ui.topic.textContent = topic;
  if (!state.roomsLoaded) return;
  joinButton.hidden = room.joined || room.private;
  leaveButton.hidden = !room.joined || room.direct;
}

/** A refusal in plain words: [heading, what it means]. */
export function problemText(slug, code, detail, { removed = false, wasPrivate = false } = {}) {
  const banned = /\bbann?ed\b|\bban\b/i.test(detail ?? "");
  if (code === "forbidden" && banned) return [`You are banned from #${slug}`, "A moderator of the room banned you."];
  if (code === "forbidden" && removed) {
    const who = /\bmoderator\b/i.test(detail ?? "") ? "A moderator removed you. " : "";
    const again = wasPrivate ? "Only a member can add you again." : "You may join it again from Browse rooms.";
    return [`You were removed from #${slug}`, who + again];
  }
  if (code === "forbidden") return [`#${slug} is private`, "Only its members can read it. Ask one of them to add you."];
  if (code === "not_found") return [`#${slug} does not exist`, "Check the name, or create it from the sidebar."];
  if (code === "too_large") return [`#${slug} cannot be followed`, "You follow as many rooms as one page can: leave one first."];
  if (code === "rate_limited") return [`#${slug} cannot be created yet`, "You created many rooms lately. Try again later."];
  return [`#${slug} cannot be opened`, detail || "Try again in a moment."];
}

function showEmpty(heading, text) {
  ui.empty.hidden = false;
  ui.empty.classList.remove("neutral");
  ui.emptyTitle.textContent = heading;
  ui.emptyText.textContent = text;
  ui.topic.textContent = "";
  ui.messages.replaceChildren();
  ui.pending.replaceChildren();
  ui.historyStatus.replaceChildren();
  ui.jumpNew.hidden = true;
  ui.composer.disabled = true;
  ui.composer.placeholder = "You cannot post here";
  joinButton.hidden = leaveButton.hidden = true;
}

export function showRoomProblem(slug, code, detail, options = {}) {
  const [heading, text] = problemText(slug, code, detail, options);
  showEmpty(heading, text);
  ui.title.replaceChildren(icon("lock"), h("span", "", slug));
  renderPresence();
}

/**
 * The server refused a room or ended its subscription (client.js `room-error`). Only the
 * room on screen says so; any other is dropped from the sidebar without a word.
 */
export function roomRefused(slug, code, detail) {
  const room = rooms.get(slug);
  if (!room) return;
  const removed = room.everSubscribed && code === "forbidden";
  room.refused = { code, detail, removed, wasPrivate: room.private };
  room.subscribed = false; // client.js has dropped it
  if (code === "forbidden" || code === "not_found") room.joined = false;
  if (slug === state.active) showRoomProblem(slug, code, detail, room.refused);
  syncSubscriptions();
  renderRoomList();
}

window.addEventListener("popstate", () => {
  const match = location.pathname.match(/^\/rooms\/([a-z0-9_-]{1,64})\/$/);
  if (match) selectRoom(match[1], { push: false });
});

joinButton.addEventListener("click", async () => {
  const slug = state.active;
  joinButton.disabled = true;
  if (await joinRoom(slug)) ui.composer.focus();
  joinButton.disabled = false;
});
leaveButton.addEventListener("click", () => leaveRoom(state.active));

function slugFrom(input) {
  return input.value.trim().toLowerCase().replace(/^#/, "").replace(/\s+/g, "-");
}

ui.joinForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = ui.joinForm.elements.room;
  const slug = slugFrom(input);
  if (!SLUG_RE.test(slug)) return toast("Room names use a-z, 0-9, - and _ (up to 64).");
  if (!(await joinRoom(slug))) return;
  input.value = "";
  selectRoom(slug);
  ui.composer.focus();
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
  if (rooms.get(slug)?.joined) {
    ui.newError.textContent = `#${slug} already exists: it is in your list.`;
    return form.slug.focus();
  }
  const button = ui.newForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const room = await post("/api/rooms", { slug, title: form.title.value.trim(), private: form.private.checked });
    ui.newForm.reset();
    adoptRoom(room.slug, { ...room, role: "owner" });
    selectRoom(room.slug);
    ui.composer.focus();
  } catch (err) {
    ui.newError.textContent = err.message;
  } finally {
    button.disabled = false;
  }
});
