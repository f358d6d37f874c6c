// Direct messages: "Message" beside each other person in the online list, and "New
// message", which finds people by name (GET /api/users?q=) and opens the conversation
// with up to 8 of them (POST /api/dms). A DM is a private room, listed under "Direct
// messages" by the names of the people in it.

import { ME } from "../state.js";
import { ui, h, toast } from "../dom.js";
import { api, post, query, debounce } from "../api.js";
import { adoptRoom, refreshRooms, selectRoom } from "./rooms.js";

const MAX_PEOPLE = 8;
const TYPING_PAUSE_MS = 200;

const $ = (id) => document.getElementById(id);
const dialog = $("new-dm");
const form = $("new-dm-form");
const input = $("dm-user-q");
const picked = $("dm-picked");
const matches = $("dm-matches");
const error = $("dm-error");

let people = []; // picked so far, in the order picked
let asking = null;

/** Open (creating it on first use) the conversation with `users`, and show it. */
export async function startDm(users) {
  const { room: slug } = await post("/api/dms", { users });
  adoptRoom(slug, { direct: true, private: true, people: users.filter((u) => u !== ME) });
  selectRoom(slug);
  ui.composer.focus();
  refreshRooms().catch(() => {});
}

// --- "Message" in the online list ---------------------------------------------------------

function bubble() {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", "M4 5h16v11H9l-5 4z");
  svg.append(path);
  return svg;
}

// presence.js renders the online list; the buttons are added to whatever it renders, so
// that module stays the one that decides who is listed and how.
function addMessageButtons() {
  for (const li of ui.online.querySelectorAll("li.member[data-user]")) {
    const user = li.dataset.user;
    if (user === ME || li.querySelector(".dm-start")) continue;
    const button = h("button", "icon-btn dm-start");
    button.type = "button";
    button.setAttribute("aria-label", `Message ${user}`);
    button.title = `Message ${user}`;
    button.append(bubble());
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await startDm([user]);
      } catch (err) {
        toast(`Could not start a conversation with ${user}: ${err.message}`);
      } finally {
        button.disabled = false;
      }
    });
    li.append(button);
  }
}
new MutationObserver(addMessageButtons).observe(ui.online, { childList: true });

// --- "New message" ---------------------------------------------------------------------------

function renderPicked() {
  picked.replaceChildren(
    ...people.map((user) => {
      const li = h("li", "chip");
      const remove = h("button", "chip-btn", `${user} ✕`);
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove ${user}`);
      remove.addEventListener("click", () => {
        people = people.filter((u) => u !== user);
        renderPicked();
        input.focus();
      });
      li.append(remove);
      return li;
    }),
  );
  input.disabled = people.length >= MAX_PEOPLE;
  input.placeholder = input.disabled ? `Up to ${MAX_PEOPLE} people` : "Type a name";
}

function pick(user) {
  if (!people.includes(user) && people.length < MAX_PEOPLE) people.push(user);
  input.value = "";
  matches.replaceChildren();
  error.textContent = "";
  renderPicked();
  if (!input.disabled) input.focus();
}

async function lookUp() {
  asking?.abort();
  const prefix = input.value.trim().replace(/^@/, "");
  if (!prefix) return matches.replaceChildren();
  const mine = (asking = new AbortController());
  try {
    const { users } = await api(`/api/users?${query({ q: prefix })}`, { signal: mine.signal });
    const found = users.map((u) => u.username).filter((name) => name !== ME && !people.includes(name));
    matches.replaceChildren(
      ...found.map((name) => {
        const li = h("li");
        const button = h("button", "dm-match", name);
        button.type = "button";
        button.setAttribute("aria-label", `Add ${name}`);
        button.addEventListener("click", () => pick(name));
        li.append(button);
        return li;
      }),
    );
    if (!found.length) matches.append(h("li", "dialog-empty", `No one else is called “${prefix}…”.`));
  } catch (err) {
    if (err.name !== "AbortError") error.textContent = `Could not look people up: ${err.message}`;
  }
}

export function openNewDm(users = []) {
  people = users.filter((u) => u !== ME).slice(0, MAX_PEOPLE);
  input.value = "";
  error.textContent = "";
  matches.replaceChildren();
  renderPicked();
  if (!dialog.open) dialog.showModal();
  input.focus();
}

input.addEventListener("input", debounce(lookUp, TYPING_PAUSE_MS));
input.addEventListener("keydown", async (ev) => {
  // Enter takes the first match, so a name can be picked without leaving the text box.
  if (ev.key !== "Enter" || !input.value.trim()) return;
  ev.preventDefault();
  if (!matches.querySelector("button.dm-match")) await lookUp();
  matches.querySelector("button.dm-match")?.click();
});
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!people.length) {
    error.textContent = "Pick at least one person.";
    return input.focus();
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await startDm(people);
    dialog.close();
  } catch (err) {
    error.textContent = err.message;
  } finally {
    button.disabled = false;
  }
});
$("new-dm-open").addEventListener("click", () => openNewDm());
dialog.querySelector(".dialog-close").addEventListener("click", () => dialog.close());
