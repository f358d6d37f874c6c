// A confirm step for what cannot be undone (delete a message, kick, ban): a native modal
// <dialog>, so focus stays inside, Escape cancels and the page behind is inert.

import { h } from "../dom.js";

const dialog = h("dialog", "confirm-dialog");
dialog.setAttribute("aria-labelledby", "confirm-title");
dialog.setAttribute("aria-describedby", "confirm-text");
const title = h("h2", "confirm-title");
title.id = "confirm-title";
const text = h("p", "confirm-text");
text.id = "confirm-text";
const cancel = h("button", "btn btn-quiet", "Cancel");
const ok = h("button", "btn btn-danger");
cancel.type = ok.type = "button";
cancel.value = "cancel";
ok.value = "confirm";
const buttons = h("div", "confirm-actions");
buttons.append(cancel, ok);
dialog.append(title, text, buttons);
document.body.append(dialog);
cancel.addEventListener("click", () => dialog.close("cancel"));
ok.addEventListener("click", () => dialog.close("confirm"));

/** Ask; resolves true when the user confirms. Cancel has the focus first: Enter is safe. */
export function confirmAction({ title: heading, text: body, confirm }) {
  if (dialog.open) dialog.close("cancel");
  title.textContent = heading;
  text.textContent = body;
  ok.textContent = confirm;
  dialog.returnValue = "";
  const opener = document.activeElement;
  dialog.showModal();
  cancel.focus();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (opener?.isConnected) opener.focus();
        resolve(dialog.returnValue === "confirm");
      },
      { once: true },
    );
  });
}
