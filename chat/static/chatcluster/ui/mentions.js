// Mentions: `@name` in a body shown as a highlight (yours stronger), and the composer's
// autocomplete of the open room's members (GET /api/rooms/<slug>/members?q=<prefix>).

import { ME, state } from "../state.js";
import { ui, h } from "../dom.js";
import { api } from "../api.js";

// The server's rule (chat/services/mentions.py): Django's name characters, not right after
// one of them, so an e-mail address mentions no one.
const MENTION_RE = /(?<![\p{L}\p{N}_@.+-])@([\p{L}\p{N}_.@+-]{1,150})/gu;
// "@bob." ends a sentence: the dot is not part of the name shown as a mention.
const TRAILING_RE = /[.@+-]+$/u;
// The `@prefix` being typed just before the caret.
const TYPED_RE = /(?<![\p{L}\p{N}_@.+-])@([\p{L}\p{N}_.@+-]{0,150})$/u;
// Wait for a short pause in typing before asking the server.
const LOOKUP_DELAY_MS = 120;
const MAX_SHOWN = 8;

/** The text of `body` as nodes, each `@name` in a span.mention (span.mention.me for you). */
export function bodyNodes(body) {
  const nodes = [];
  let at = 0;
  for (const match of body.matchAll(MENTION_RE)) {
    const name = match[1].replace(TRAILING_RE, "");
    if (!name) continue;
    if (match.index > at) nodes.push(document.createTextNode(body.slice(at, match.index)));
    const span = h("span", name === ME ? "mention me" : "mention", `@${name}`);
    nodes.push(span);
    at = match.index + 1 + name.length;
  }
  if (at < body.length) nodes.push(document.createTextNode(body.slice(at)));
  return nodes;
}

export function mentionsMe(body) {
  for (const match of (body ?? "").matchAll(MENTION_RE)) if (match[1].replace(TRAILING_RE, "") === ME) return true;
  return false;
}

// --- autocomplete -----------------------------------------------------------------------

const list = h("ul", "mention-list");
list.id = "mention-list";
list.setAttribute("role", "listbox");
list.setAttribute("aria-label", "Members to mention");
list.hidden = true;
ui.composerForm.append(list);
ui.composer.setAttribute("aria-autocomplete", "list");
ui.composer.setAttribute("aria-controls", list.id);
ui.composer.setAttribute("aria-expanded", "false");

let options = []; // usernames shown
let active = 0;
let lookup = 0; // the latest lookup's number: older answers are dropped
let timer;

function typedPrefix() {
  const c = ui.composer;
  if (c.selectionStart !== c.selectionEnd) return null;
  const match = c.value.slice(0, c.selectionStart).match(TYPED_RE);
  return match ? match[1] : null;
}

export function closeMentions() {
  clearTimeout(timer);
  lookup += 1;
  options = [];
  list.hidden = true;
  list.replaceChildren();
  ui.composer.setAttribute("aria-expanded", "false");
  ui.composer.removeAttribute("aria-activedescendant");
}

/** After each input: look up members when the caret follows `@prefix`. */
export function mentionInput() {
  const prefix = typedPrefix();
  if (prefix === null || !state.active) return closeMentions();
  clearTimeout(timer);
  const slug = state.active;
  const mine = ++lookup;
  timer = setTimeout(async () => {
    let members;
    try {
      members = (await api(`/api/rooms/${slug}/members?q=${encodeURIComponent(prefix)}`)).members;
    } catch {
      members = []; // no autocomplete is better than an error while typing
    }
    if (mine !== lookup || slug !== state.active || typedPrefix() !== prefix) return;
    show(members.map((m) => m.username).filter((name) => name !== ME).slice(0, MAX_SHOWN));
  }, LOOKUP_DELAY_MS);
}

function show(names) {
  options = names;
  active = 0;
  if (!names.length) return closeMentions();
  list.replaceChildren(
    ...names.map((name, i) => {
      const li = h("li", "mention-option", name);
      li.id = `mention-option-${i}`;
      li.setAttribute("role", "option");
      li.dataset.user = name;
      // Keep the focus in the composer: the pick happens on click.
      li.addEventListener("mousedown", (ev) => ev.preventDefault());
      li.addEventListener("click", () => pick(name));
      return li;
    }),
  );
  list.hidden = false;
  ui.composer.setAttribute("aria-expanded", "true");
  highlight();
}

function highlight() {
  [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === active)));
  ui.composer.setAttribute("aria-activedescendant", `mention-option-${active}`);
  list.children[active]?.scrollIntoView({ block: "nearest" });
}

function pick(name) {
  const c = ui.composer;
  const before = c.value.slice(0, c.selectionStart);
  const prefix = before.match(TYPED_RE);
  if (!prefix) return closeMentions();
  const start = before.length - prefix[0].length;
  const insert = `@${name} `;
  c.value = c.value.slice(0, start) + insert + c.value.slice(c.selectionStart);
  c.selectionStart = c.selectionEnd = start + insert.length;
  closeMentions();
  c.dispatchEvent(new Event("input")); // the composer's height, counter and typing frame
  c.focus();
}

/** The composer's keydown while the list is open; true when the key was ours. */
export function mentionKeydown(ev) {
  if (list.hidden || !options.length || ev.isComposing) return false;
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    active = (active + (ev.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
    highlight();
  } else if ((ev.key === "Enter" && !ev.shiftKey) || ev.key === "Tab") {
    pick(options[active]);
  } else if (ev.key === "Escape") {
    closeMentions();
    ev.stopPropagation(); // Escape here closes the list, not the page's side panels
  } else return false;
  ev.preventDefault();
  return true;
}

// A click on an option keeps the focus (mousedown is prevented), so any blur means "done".
ui.composer.addEventListener("blur", closeMentions);
