// Reactions: the chips under a message (emoji and count, yours pressed, whose in the title
// and the accessible name), the "Add reaction" picker, and live `react` events.

import { ME, client, rooms } from "../state.js";
import { h, toast } from "../dom.js";
import { findMessage, keepingBottom, rowOf } from "./messages.js";
import { changeProblem } from "./moderation.js";

export const COMMON_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢"];
// Past this many names a chip's title and label say "and N others".
const NAMES_SHOWN = 20;

function whose(users) {
  const names = users.slice(0, NAMES_SHOWN).join(", ");
  return users.length > NAMES_SHOWN ? `${names} and ${users.length - NAMES_SHOWN} others` : names;
}

/** The chips of `msg`: always a div.reactions (hidden when empty), so updates replace it. */
export function reactionsRow(room, msg) {
  const row = h("div", "reactions");
  const entries = msg.deleted ? [] : Object.entries(msg.reactions ?? {}).filter(([, users]) => users.length);
  row.hidden = !entries.length;
  for (const [emoji, users] of entries) {
    const chip = h("button", "chip");
    chip.type = "button";
    chip.dataset.emoji = emoji;
    chip.setAttribute("aria-pressed", String(users.includes(ME)));
    chip.title = whose(users);
    chip.setAttribute("aria-label", `${emoji} ${users.length}: ${whose(users)}`);
    chip.append(h("span", "chip-emoji", emoji), h("span", "chip-count", String(users.length)));
    chip.addEventListener("click", () => react(room, msg.seq, emoji, null));
    row.append(chip);
  }
  return row;
}

/** A reaction given (`on`) or taken back by `user`, from a live event or our own ack. */
export function applyReaction(room, { target, user, emoji, on }) {
  const msg = findMessage(room, target);
  if (!msg || msg.deleted) return; // not loaded: history brings its final state
  const reactions = (msg.reactions ??= {});
  const users = reactions[emoji] ?? [];
  const has = users.includes(user);
  if (on === false ? !has : has) return; // repeats (our ack, then the event) change nothing
  if (on === false) {
    users.splice(users.indexOf(user), 1);
    if (!users.length) delete reactions[emoji];
  } else reactions[emoji] = [...users, user];
  const li = rowOf(room, target);
  if (li) keepingBottom(() => li.querySelector(".reactions").replaceWith(reactionsRow(room, msg)));
}

/** React to message `seq` with `emoji`: `on` true gives, false takes back, null toggles. */
async function react(room, seq, emoji, on) {
  // Looked up now: a reload of the room (after a reset) replaces the message objects.
  const msg = findMessage(room, seq);
  if (!msg) return;
  const mine = (msg.reactions?.[emoji] ?? []).includes(ME);
  if (on === null) on = !mine;
  else if (on === mine) return;
  try {
    await client.react(room.slug, seq, emoji, on);
    applyReaction(room, { target: seq, user: ME, emoji, on });
  } catch (err) {
    toast(changeProblem(err, room.slug, on ? "Your reaction was not added" : "Your reaction was not removed"));
  }
}

// --- the picker --------------------------------------------------------------------------

const picker = h("div", "emoji-picker");
picker.setAttribute("role", "menu");
picker.setAttribute("aria-label", "Add a reaction");
picker.hidden = true;
for (const emoji of COMMON_EMOJI) {
  const button = h("button", "emoji-btn", emoji);
  button.type = "button";
  button.setAttribute("role", "menuitem");
  button.setAttribute("aria-label", `React with ${emoji}`);
  button.addEventListener("click", () => {
    const { room, seq } = picker.target;
    closePicker({ refocus: true });
    react(room, seq, emoji, true);
  });
  picker.append(button);
}
document.body.append(picker);

export function openPicker(trigger, room, seq) {
  if (!picker.hidden && picker.target?.trigger === trigger) return closePicker();
  closePicker();
  picker.target = { trigger, room, seq };
  picker.hidden = false;
  trigger.setAttribute("aria-expanded", "true");
  place();
  picker.firstElementChild.focus();
}

/** Above the button when it fits, below otherwise; right edges aligned. */
function place() {
  const trigger = picker.target?.trigger;
  if (!trigger?.isConnected) return closePicker();
  const at = trigger.getBoundingClientRect();
  const { width, height } = picker.getBoundingClientRect();
  picker.style.left = `${Math.max(8, at.right - width)}px`;
  picker.style.top = `${at.top - height - 6 > 8 ? at.top - height - 6 : at.bottom + 6}px`;
}

export function closePicker({ refocus = false } = {}) {
  if (picker.hidden) return;
  picker.hidden = true;
  const trigger = picker.target?.trigger;
  trigger?.setAttribute("aria-expanded", "false");
  if (refocus && trigger?.isConnected) trigger.focus();
  picker.target = null;
}

picker.addEventListener("keydown", (ev) => {
  const buttons = [...picker.children];
  const at = buttons.indexOf(document.activeElement);
  if (ev.key === "ArrowRight" || ev.key === "ArrowDown") buttons[(at + 1) % buttons.length].focus();
  else if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") buttons[(at + buttons.length - 1) % buttons.length].focus();
  else if (ev.key === "Escape") closePicker({ refocus: true });
  else if (ev.key === "Tab") closePicker({ refocus: true });
  else return;
  ev.preventDefault();
  ev.stopPropagation();
});
document.addEventListener("pointerdown", (ev) => {
  if (!picker.hidden && !picker.contains(ev.target) && !picker.target?.trigger.contains(ev.target)) closePicker();
});
// New messages scroll the list while the picker is open: it follows its button.
document.addEventListener("scroll", () => picker.hidden || place(), { capture: true, passive: true });

client.addEventListener("react", ({ detail }) => {
  const room = rooms.get(detail.room);
  if (room) applyReaction(room, detail);
});
