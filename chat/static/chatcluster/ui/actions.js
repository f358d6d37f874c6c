// What you can do to a message: the hover toolbar (add reaction, edit, delete), the inline
// editor (Enter saves, Escape cancels), delete with a confirm, and the live `edit` and
// `delete` events that change a message in place.

import { ME, client, rooms, state } from "../state.js";
import { ui, h, icon, toast } from "../dom.js";
import { timeEl } from "../time.js";
import { findMessage, keepingBottom, rowOf } from "./messages.js";
import { bodyNodes, mentionsMe } from "./mentions.js";
import { reactionsRow, openPicker } from "./reactions.js";
import { changeProblem } from "./moderation.js";
import { confirmAction } from "./dialog.js";

// The one message being edited: {slug, seq, draft}; survives the list being rendered again.
let editing = null;

/** The body of `msg`: its text with mentions, "(edited)", or "Message deleted"; or the editor. */
export function messageBody(room, msg) {
  if (msg.deleted) return h("div", "body deleted", "Message deleted");
  if (editing && editing.slug === room.slug && editing.seq === msg.seq) return editor(room, msg);
  const body = h("div", "body");
  body.append(...bodyNodes(msg.body ?? ""));
  if (msg.edited) {
    const mark = timeEl(new Date(msg.edited), "edited", "(edited)");
    mark.title = `Edited ${mark.title}`;
    body.append(" ", mark);
  }
  return body;
}

/** Row classes that follow the message's state. */
export function markRow(li, msg) {
  li.classList.toggle("deleted", Boolean(msg.deleted));
  li.classList.toggle("mentions-me", !msg.deleted && msg.user !== ME && mentionsMe(msg.body));
}

function actionButton(name, label, onClick, className = "") {
  const button = h("button", `act-btn ${className}`.trim());
  button.type = "button";
  button.setAttribute("aria-label", label);
  button.title = label;
  button.append(icon(name));
  button.addEventListener("click", onClick);
  return button;
}

/** The toolbar shown on hover or focus; "Delete" on others' messages shows to moderators only (CSS). */
export function actionsBar(room, msg) {
  const bar = h("div", "msg-actions");
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", `Message from ${msg.user}`);
  if (msg.deleted) {
    bar.hidden = true;
    return bar;
  }
  const add = actionButton("react", "Add reaction", () => openPicker(add, room, msg.seq));
  add.setAttribute("aria-haspopup", "menu");
  add.setAttribute("aria-expanded", "false");
  bar.append(add);
  if (msg.user === ME) bar.append(actionButton("edit", "Edit", () => startEdit(room, msg.seq)));
  bar.append(actionButton("trash", "Delete", () => askDelete(room, msg.seq), msg.user === ME ? "danger" : "danger mod-only"));
  return bar;
}

/** Put `msg`'s row in step with its state, in place (no whole-list render). */
export function refreshRow(room, msg) {
  const li = rowOf(room, msg.seq);
  if (!li) return;
  keepingBottom(() => {
    markRow(li, msg);
    li.querySelector(".body").replaceWith(messageBody(room, msg));
    li.querySelector(".reactions").replaceWith(reactionsRow(room, msg));
    li.querySelector(".msg-actions").replaceWith(actionsBar(room, msg));
  });
}

// --- edit -----------------------------------------------------------------------------------

function editor(room, msg) {
  const form = h("form", "body edit-form");
  const box = h("textarea", "edit-box");
  box.value = editing.draft;
  box.rows = 1;
  box.setAttribute("aria-label", "Edit message");
  const hint = h("span", "edit-hint", "Enter to save · Escape to cancel");
  form.append(box, hint);
  box.addEventListener("input", () => {
    editing.draft = box.value;
    grow(box);
  });
  box.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation(); // Escape cancels the edit, not the page's side panels
      endEdit(room, msg.seq);
    } else if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      saveEdit(room, msg.seq, box);
    }
  });
  form.addEventListener("submit", (ev) => ev.preventDefault());
  requestAnimationFrame(() => grow(box));
  return form;
}

function grow(box) {
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight, 240)}px`;
}

export function startEdit(room, seq) {
  const msg = findMessage(room, seq);
  if (!msg || msg.deleted || msg.user !== ME) return;
  const previous = editing && findMessage(rooms.get(editing.slug) ?? room, editing.seq);
  editing = { slug: room.slug, seq, draft: msg.body };
  if (previous) refreshRow(room, previous);
  refreshRow(room, msg);
  const box = rowOf(room, seq)?.querySelector(".edit-box");
  if (box) {
    box.focus();
    box.selectionStart = box.selectionEnd = box.value.length;
  }
}

/** Edit your newest message (ArrowUp in an empty composer). */
export function editLast() {
  const room = rooms.get(state.active);
  const mine = room?.list.findLast((m) => m.user === ME && !m.deleted);
  if (!mine) return false;
  startEdit(room, mine.seq);
  return true;
}

function endEdit(room, seq, { focusComposer = true } = {}) {
  if (!editing || editing.slug !== room.slug || editing.seq !== seq) return;
  editing = null;
  const msg = findMessage(room, seq);
  if (msg) refreshRow(room, msg);
  if (focusComposer) ui.composer.focus();
}

async function saveEdit(room, seq, box) {
  const msg = findMessage(room, seq);
  const body = box.value;
  if (!msg || body === msg.body) return endEdit(room, seq);
  if (!body.trim()) return toast("A message cannot be empty: use Delete to remove it.");
  box.readOnly = true;
  try {
    await client.edit(room.slug, seq, body);
    endEdit(room, seq);
    applyChange(room, { type: "edit", target: seq, body, ts: new Date().toISOString() });
  } catch (err) {
    box.readOnly = false;
    toast(changeProblem(err, room.slug, "Your edit was not saved"));
  }
}

// --- delete ---------------------------------------------------------------------------------

async function askDelete(room, seq) {
  const msg = findMessage(room, seq);
  if (!msg) return;
  const ok = await confirmAction({
    title: "Delete this message?",
    text: msg.user === ME ? "It will be removed for everyone. This cannot be undone." : `${msg.user}'s message will be removed for everyone. This cannot be undone.`,
    confirm: "Delete",
  });
  if (!ok) return;
  try {
    await client.deleteMessage(room.slug, seq);
    applyChange(room, { type: "delete", target: seq });
  } catch (err) {
    toast(changeProblem(err, room.slug, "The message was not deleted"));
  }
}

// --- live changes -------------------------------------------------------------------------

/** An `edit` or `delete` of a loaded message (from the stream, or our own ack). */
export function applyChange(room, change) {
  const msg = findMessage(room, change.target);
  if (!msg || msg.deleted) return; // not loaded (history brings its final state), or final already
  if (change.type === "delete") {
    // Nothing of the text stays in the page, not even in an open editor's draft.
    Object.assign(msg, { deleted: true, body: "", reactions: {} });
    if (editing && editing.slug === room.slug && editing.seq === msg.seq) editing = null;
  } else {
    if (msg.body === change.body && msg.edited) return;
    Object.assign(msg, { body: change.body, edited: change.ts });
  }
  refreshRow(room, msg);
}

for (const type of ["edit", "delete"]) {
  client.addEventListener(type, ({ detail }) => {
    const room = rooms.get(detail.room);
    if (room) applyChange(room, { ...detail, type });
  });
}

// Touch screens have no hover: a tap on a message shows its toolbar.
ui.messages.addEventListener("click", (ev) => {
  if (ev.target.closest("button, a, textarea, .msg-actions")) return;
  const li = ev.target.closest("li.msg");
  for (const other of ui.messages.querySelectorAll("li.msg.touched")) if (other !== li) other.classList.remove("touched");
  li?.classList.toggle("touched");
});
