// The sidebar's two lists, "Rooms" and "Direct messages": the rooms the user joined, each
// with its unread count and a separate mention badge.
//
// Counts: the server's `unread` and `mentions` (GET /api/rooms?scope=joined) are the
// baseline, as of the room's `seq` then. Live, only `message` frames by others add to
// them: seqs also number edits, deletes and reactions, so `seq - read` over-counts.

import { ME, rooms, state } from "../state.js";
import { readUpTo } from "../reads.js";
import { ui, h, icon, avatar } from "../dom.js";
import { selectRoom } from "./rooms.js";
import { mentionsMe } from "./mentions.js";

const dmList = document.getElementById("dm-list");
const roomsEmpty = document.getElementById("rooms-empty");
const dmsEmpty = document.getElementById("dms-empty");
const liveStatus = document.getElementById("sidebar-status");

/** The server's counts for `room`, as of its seq `info.seq`. */
export function setBaseline(room, info) {
  room.baseSeq = info.seq ?? 0;
  room.baseUnread = info.unread ?? 0;
  room.baseMentions = info.mentions ?? 0;
  for (const seq of room.live.keys()) if (seq <= room.baseSeq) room.live.delete(seq);
}

/** Count a live message; true when it mentions the user. */
export function countLive(room, msg) {
  if (!room.joined || msg.user === ME || msg.deleted || msg.seq <= room.baseSeq) return false;
  const mention = mentionsMe(msg.body);
  room.live.set(msg.seq, mention);
  return mention;
}

/** Unread messages and mentions past the read marker; none for the room in view. */
export function countsOf(room) {
  if (!room.joined || (room.slug === state.active && !document.hidden)) return { unread: 0, mentions: 0 };
  const read = readUpTo(room.slug) ?? 0;
  let unread = 0;
  let mentions = 0;
  // The baseline cannot be split by seq: it holds until the marker passes the seq it was counted at.
  if (read < room.baseSeq) {
    unread = room.baseUnread;
    mentions = room.baseMentions;
  }
  for (const [seq, mention] of room.live) {
    if (seq <= read) continue;
    unread += 1;
    if (mention) mentions += 1;
  }
  return { unread, mentions };
}

/** How a room is named on the page: a DM by its other people, a room by its title. */
export function displayName(room) {
  if (room.direct) return room.people.length ? room.people.join(", ") : ME;
  return room.title || room.slug;
}

export function label(room) {
  return room.direct ? displayName(room) : `#${room.slug}`;
}

const byName = (a, b) => displayName(a).localeCompare(displayName(b));
const bySlug = (a, b) => a.slug.localeCompare(b.slug);

/** The joined rooms in sidebar order: rooms first, then DMs. */
export function joinedRooms() {
  const joined = [...rooms.values()].filter((r) => r.joined);
  return [...joined.filter((r) => !r.direct).sort(bySlug), ...joined.filter((r) => r.direct).sort(byName)];
}

function roomItem(slug) {
  const li = h("li", "room-item");
  li.dataset.room = slug;
  const link = h("a", "room-link");
  link.href = `/rooms/${slug}/`;
  const mention = h("span", "mention-badge");
  mention.setAttribute("role", "img");
  const badge = h("span", "unread");
  badge.setAttribute("aria-hidden", "true");
  // The space keeps "(3 unread)" and "2 mentions" apart in the link's accessible name.
  link.append(h("span", "room-lead"), h("span", "room-name"), h("span", "visually-hidden room-extra"), " ", mention, badge);
  li.append(link);
  return li;
}

function updateItem(li, room) {
  const link = li.firstElementChild;
  const [lead, name, extra, mention, badge] = link.children;
  const leadKey = room.direct ? `dm:${room.people[0] ?? ME}` : room.private ? "lock" : "hash";
  if (lead.dataset.key !== leadKey) {
    lead.dataset.key = leadKey;
    lead.replaceChildren(room.direct ? avatar(room.people[0] ?? ME) : icon(room.private ? "lock" : "hash"));
  }
  link.classList.toggle("private", room.private && !room.direct);
  name.textContent = displayName(room);
  const { unread, mentions } = countsOf(room);
  const extras = [room.private && !room.direct && "private", unread && `${unread} unread`].filter(Boolean);
  extra.textContent = extras.length ? ` (${extras.join(", ")})` : "";
  mention.textContent = `@${mentions > 99 ? "99+" : mentions}`;
  mention.setAttribute("aria-label", `${mentions} mention${mentions === 1 ? "" : "s"}`);
  mention.hidden = !mentions;
  badge.textContent = unread > 99 ? "99+" : String(unread);
  badge.hidden = !unread;
  link.classList.toggle("has-unread", unread > 0);
  if (room.slug === state.active) link.setAttribute("aria-current", "page");
  else link.removeAttribute("aria-current");
}

/** Update one list in place, so keyboard focus survives counts changing. */
function renderList(list, items) {
  const current = [...list.children];
  if (current.map((li) => li.dataset.room).join("\n") !== items.map((r) => r.slug).join("\n")) {
    const existing = new Map(current.map((li) => [li.dataset.room, li]));
    list.replaceChildren(...items.map((room) => existing.get(room.slug) ?? roomItem(room.slug)));
  }
  for (const li of list.children) updateItem(li, rooms.get(li.dataset.room));
}

export function renderRoomList() {
  const joined = joinedRooms();
  const plain = joined.filter((r) => !r.direct);
  const direct = joined.filter((r) => r.direct);
  renderList(ui.roomList, plain);
  renderList(dmList, direct);
  roomsEmpty.hidden = !state.roomsLoaded || plain.length > 0;
  dmsEmpty.hidden = !state.roomsLoaded || direct.length > 0;
  const total = joined.reduce((sum, r) => sum + countsOf(r).unread, 0);
  const active = rooms.get(state.active);
  document.title = `${total ? `(${total}) ` : ""}${active ? `${label(active)} · ` : ""}Relay`;
}

/** Say something to screen readers without moving focus (a mention in another room). */
export function announce(text) {
  liveStatus.textContent = text;
}

for (const list of [ui.roomList, dmList]) {
  list.addEventListener("click", (ev) => {
    const link = ev.target.closest("a.room-link");
    if (!link || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    selectRoom(link.closest("li").dataset.room);
    ui.composer.focus();
  });
}
