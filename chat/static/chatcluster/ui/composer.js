// The message composer: Enter to send, auto-growing height, characters left, typing frames.

import { MAX_BODY, client, state } from "../state.js";
import { ui, toast } from "../dom.js";
import { scrollToBottom } from "./messages.js";

function sendComposer() {
  const body = ui.composer.value;
  if (!state.active || !body.trim()) return;
  if (body.length > MAX_BODY) return toast(`Messages are limited to ${MAX_BODY} characters.`);
  client.publish(state.active, body);
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
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    sendComposer();
  }
});
ui.composer.addEventListener("input", () => {
  composerChanged();
  if (state.active && ui.composer.value.trim()) client.typing(state.active);
});
ui.composerForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  sendComposer();
  ui.composer.focus();
});
