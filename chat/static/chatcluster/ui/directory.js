// The room directory ("Browse rooms"): public rooms one page at a time from
// GET /api/rooms?scope=public, filtered by name or title as the user types, "More" for
// the next page. The page holds only the pages asked for, so 10,000 rooms cost no more
// than 50. Opening a room previews it; its header offers "Join".

import { rooms } from "../state.js";
import { ui, h, icon } from "../dom.js";
import { api, query, debounce } from "../api.js";
import { ensureRoom, selectRoom } from "./rooms.js";

const PAGE = 50;
const TYPING_PAUSE_MS = 250;

const $ = (id) => document.getElementById(id);
const dialog = $("directory");
const input = $("directory-q");
const list = $("directory-list");
const more = $("directory-more");
const status = $("directory-status");

let next = null;
let shown = 0;
let asking = null; // the AbortController of the request in flight: a newer one replaces it

async function load({ fresh }) {
  asking?.abort();
  const mine = (asking = new AbortController());
  const q = input.value.trim();
  status.textContent = "Loading rooms…";
  more.disabled = true;
  try {
    const page = await api(`/api/rooms?${query({ scope: "public", q, limit: PAGE, after: fresh ? null : next })}`, {
      signal: mine.signal,
    });
    if (fresh) {
      list.replaceChildren();
      shown = 0;
    }
    list.append(...page.rooms.map(roomRow));
    shown += page.rooms.length;
    next = page.next;
    more.hidden = !next;
    if (shown) status.textContent = `${shown} room${shown === 1 ? "" : "s"} shown${next ? ", more below" : ""}.`;
    else status.textContent = q ? `No public room matches “${q}”.` : "There are no public rooms yet: create one from the sidebar.";
  } catch (err) {
    if (err.name !== "AbortError") status.textContent = `Could not load rooms: ${err.message}`;
  } finally {
    if (asking === mine) more.disabled = false;
  }
}

function roomRow(info) {
  const li = h("li", "dir-item");
  const button = h("button", "dir-room");
  button.type = "button";
  button.dataset.room = info.slug;
  button.dataset.title = info.title;
  const name = h("span", "dir-name");
  name.append(icon("hash"), h("span", "", info.title || info.slug));
  const facts = [];
  if (info.title && info.title !== info.slug) facts.push(`#${info.slug}`);
  if (info.members !== undefined) facts.push(`${info.members} member${info.members === 1 ? "" : "s"}`);
  button.append(name, h("span", "dir-meta", facts.join(" · ")));
  if (info.joined || rooms.get(info.slug)?.joined) button.append(h("span", "dir-joined", "Joined"));
  li.append(button);
  return li;
}

export function openDirectory() {
  if (!dialog.open) dialog.showModal();
  input.focus();
  load({ fresh: true });
}

const search = debounce(() => load({ fresh: true }), TYPING_PAUSE_MS);
input.addEventListener("input", search);
input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter") {
    ev.preventDefault();
    load({ fresh: true });
  }
});
more.addEventListener("click", () => load({ fresh: false }));
list.addEventListener("click", (ev) => {
  const button = ev.target.closest("button.dir-room");
  if (!button) return;
  dialog.close();
  ensureRoom(button.dataset.room, { title: button.dataset.title, private: false });
  selectRoom(button.dataset.room);
  ui.composer.focus();
});
$("browse-rooms").addEventListener("click", openDirectory);
dialog.querySelector(".dialog-close").addEventListener("click", () => dialog.close());
