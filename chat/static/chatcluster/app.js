// The chat page: rooms sidebar, message pane, presence, composer. All protocol work is
// in client.js; this module only turns its events into DOM. User data goes into the
// page through textContent and attributes only, never through innerHTML.
//
// This module is the entry: it wires ChatClient events to the ui/ modules, handles the
// page-level panels and visibility, and starts the page. See ui/ for each part.

import { ME, config, client, rooms, pendingSends, state } from "./state.js";
import { flushReads, markReadUpTo, readUpTo } from "./reads.js";
import { ui, toast } from "./dom.js";
import { goToLogin } from "./api.js";
import { refreshTimes } from "./time.js";
import { setBannerState, renderBanner } from "./ui/banner.js";
import { refreshRooms, selectRoom, land, joinOnSend, roomRefused } from "./ui/rooms.js";
import { renderRoomList, countLive, announce, label } from "./ui/sidebar.js";
import { appendLive, loadOlder, renderMessages, renderPending, isAtBottom, scrollToBottom, markRead } from "./ui/messages.js";
import { renderTyping, renderPresence, TYPING_SHOW_MS } from "./ui/presence.js";
import "./ui/composer.js";
import "./ui/directory.js";
import "./ui/dms.js";
import "./ui/search.js";

// The joined list is asked again this often while the page is visible: a DM someone
// started, or a private room someone added you to, has no frame of its own on the socket.
const ROOMS_POLL_MS = 30_000;

// --- client events -----------------------------------------------------------------------

client.addEventListener("state", (ev) => {
  document.body.dataset.conn = ev.detail.state;
  setBannerState(ev.detail);
  if (pendingSends.size) renderPending();
});

client.addEventListener("unauthorized", goToLogin);

// Someone began a DM with you, or added you to a room: it shows without waiting for a poll.
client.addEventListener("added", () => refreshRooms().catch(() => {}));

client.addEventListener("message", ({ detail: msg }) => {
  const room = rooms.get(msg.room);
  if (!room) return;
  room.typers.delete(msg.user);
  room.latest = Math.max(room.latest, msg.seq);
  appendLive(room, msg);
  // Your own message, written elsewhere, is not news to you, if you had read up to it.
  if (msg.user === ME && readUpTo(room.slug) === msg.seq - 1) markReadUpTo(room.slug, msg.seq);
  const mention = countLive(room, msg);
  if (mention && (room.slug !== state.active || document.hidden)) announce(`${msg.user} mentioned you in ${label(room)}`);
  renderRoomList();
  if (room.slug === state.active) {
    renderTyping();
    markRead();
  }
});

client.addEventListener("subscribed", ({ detail }) => {
  const room = rooms.get(detail.room);
  if (!room) return;
  room.latest = Math.max(room.latest, detail.seq);
  room.everSubscribed = true;
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
      // The first message after what we held (seqs also count edits, deletes and reactions).
      room.breakSeq = heldUpTo + 1;
      if (room.slug === state.active) renderMessages({ toBottom: true });
    });
  if (room.slug === state.active) reload();
});

client.addEventListener("presence", ({ detail }) => {
  const room = rooms.get(detail.room);
  if (!room) return;
  room.presence = detail.users;
  if (room.slug === state.active) renderPresence();
});

client.addEventListener("typing", ({ detail }) => {
  const room = rooms.get(detail.room);
  if (!room || detail.user === ME) return;
  room.typers.set(detail.user, Date.now() + TYPING_SHOW_MS);
  if (room.slug === state.active) renderTyping();
  setTimeout(renderTyping, TYPING_SHOW_MS + 50);
});

client.addEventListener("publish", ({ detail }) => {
  if (detail.status === "done" || detail.status === "discarded") pendingSends.delete(detail.ref);
  else pendingSends.set(detail.ref, detail);
  if (detail.status === "sending") joinOnSend(detail.room);
  if (detail.status === "failed" && detail.room !== state.active) toast(`A message to #${detail.room} was not sent: ${detail.error?.detail}`);
  if (detail.status === "sending" && detail.retryAt && detail.error?.code === "rate_limited") {
    // Held by the server (slow mode, or sending too fast): it goes out by itself, later.
    const wait = Math.max(1, Math.ceil((detail.retryAt - Date.now()) / 1000));
    const slow = /slow mode/i.test(detail.error.detail ?? "");
    toast(slow ? `Slow mode in #${detail.room}: your message goes out in ${wait} s.` : `Sending too fast: your message goes out in ${wait} s.`);
  }
  if (detail.room === state.active) {
    const atBottom = isAtBottom();
    renderPending();
    if (atBottom) scrollToBottom();
  }
});

// A refusal, or the end of a subscription (removed, banned): words only for the room on screen.
client.addEventListener("room-error", ({ detail }) => roomRefused(detail.room, detail.code, detail.detail));

client.addEventListener("error", ({ detail }) => {
  if (detail.room && detail.room !== state.active) return; // not about what the user is looking at
  if (detail.code === "rate_limited") toast("Slow down a little: you are sending too fast.");
  else if (detail.detail) toast(detail.detail);
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

window.addEventListener("online", () => client.reconnectNow());
window.addEventListener("pagehide", flushReads);
document.addEventListener("visibilitychange", () => {
  renderRoomList(); // the open room's badge counts only while the tab is hidden
  if (document.hidden) return flushReads();
  client.reconnectNow();
  markRead();
  refreshRooms().catch(() => {});
});

setInterval(refreshTimes, 30_000);
setInterval(() => document.hidden || refreshRooms().catch(() => {}), ROOMS_POLL_MS);

// --- start -----------------------------------------------------------------------------------

async function start() {
  client.connect();
  renderBanner();
  if (config.room) selectRoom(config.room, { replace: true });
  try {
    await refreshRooms();
  } catch (err) {
    toast(`Could not load your rooms: ${err.message}`);
  }
  if (!config.room) await land();
}

start();
