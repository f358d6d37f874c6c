// The message composer: Enter to send, auto-growing height, characters left, typing frames,
// the mention autocomplete (ui/mentions.js), ArrowUp to edit your last message.

import { MAX_BODY, client, state } from "../state.js";
import { ui, toast } from "../dom.js";
import { scrollToBottom } from "./messages.js";
import { closeMentions, mentionInput, mentionKeydown } from "./mentions.js";
import { editLast } from "./actions.js";
import { noteSent, slowModeWait } from "./moderation.js";

// Our sends not yet in their room's stream: ref -> room. Keys typed meanwhile announce
// "typing" once the send lands. Sent earlier, that frame could overtake a publish still
// queued behind another: the server's throttle, not yet cleared by that publish, drops it,
// or others get it before the message that clears "is typing"; and the client then keeps
// quiet for 3 s. So the first keys after a send would not show.
const unlanded = new Map();
let typingHeld = null; // the room whose typing waits for our sends there to land

function announceTyping() {
  const room = state.active;
  if (!room || !ui.composer.value.trim()) return;
  if ([...unlanded.values()].includes(room)) typingHeld = room;
  else client.typing(room);
}

client.addEventListener("publish", ({ detail }) => {
  if (detail.status !== "done" && detail.status !== "failed" && detail.status !== "discarded") return;
  unlanded.delete(detail.ref);
  if (typingHeld !== detail.room || [...unlanded.values()].includes(detail.room)) return;
  typingHeld = null;
  if (detail.room === state.active) announceTyping();
});

function sendComposer() {
  const body = ui.composer.value;
  if (!state.active || !body.trim()) return;
  if (body.length > MAX_BODY) return toast(`Messages are limited to ${MAX_BODY} characters.`);
  const wait = slowModeWait(state.active);
  if (wait) return toast(`Slow mode: wait ${wait} s`);
  closeMentions();
  unlanded.set(client.publish(state.active, body), state.active);
  noteSent(state.active);
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
  if (mentionKeydown(ev)) return;
  if (ev.key === "ArrowUp" && !ui.composer.value && editLast()) ev.preventDefault();
  else if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    sendComposer();
  }
});
ui.composer.addEventListener("input", () => {
  composerChanged();
  mentionInput();
  announceTyping();
});
ui.composerForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  sendComposer();
  ui.composer.focus();
});
