// The online list and the "X is typing…" line of the open room.

import { ME, rooms, state } from "../state.js";
import { ui, h, avatar } from "../dom.js";
import { canModerate, userMenuButton } from "./moderation.js";

// How long "X is typing…" stays without a fresh typing frame (senders repeat every 3 s).
export const TYPING_SHOW_MS = 4000;

export function renderPresence() {
  const room = rooms.get(state.active);
  const users = room ? room.presence : [];
  const moderator = room ? canModerate(room.slug) : false;
  ui.online.replaceChildren(
    ...users.map((user) => {
      const li = h("li", "member");
      li.dataset.user = user;
      li.append(avatar(user), h("span", "member-name", user));
      if (user === ME) li.append(h("span", "you", "you"));
      else if (moderator) li.append(userMenuButton(user));
      return li;
    }),
  );
  ui.onlineCount.textContent = String(users.length);
  ui.membersCount.textContent = String(users.length);
}

export function renderTyping() {
  const room = rooms.get(state.active);
  const now = Date.now();
  const names = room ? [...room.typers].filter(([, until]) => until > now).map(([user]) => user) : [];
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = "Several people are typing…";
  ui.typing.textContent = text;
  ui.typing.classList.toggle("active", Boolean(text));
}
