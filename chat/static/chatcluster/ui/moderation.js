// Moderation from the page: your role in the open room (GET /api/rooms/<slug>/members →
// me.moderator, and for a moderator who is banned and muted), a menu per user in the
// online list (kick, ban, mute or unmute), the room's banned users with an Unban each, the
// room's slow mode, and plain words for what sanctions do to you (muted, slow mode). Being
// removed from a room (kick, ban) is told by rooms.js, as any room that ends.

import { ME, client, rooms, state } from "../state.js";
import { ui, h, icon, avatar, toast } from "../dom.js";
import { api } from "../api.js";
import { confirmAction } from "./dialog.js";
import { renderPresence } from "./presence.js";

const SLOW_CHOICES = [0, 10, 30, 60, 300, 900, 3600];
// A role learned this long ago is asked again when the room is opened.
const ROLE_FRESH_MS = 60_000;

const roles = new Map(); // slug -> {moderator, slow, at, banned, muted} (the lists: null when unknown)
const asking = new Set();
const askAgain = new Set(); // asked for fresh while a request was out: ask once more after it
const lastSent = new Map(); // slug -> Date.now() of our last send, for slow mode

export function canModerate(slug) {
  return roles.get(slug)?.moderator === true;
}

function seconds(n) {
  if (n >= 3600 && n % 3600 === 0) return `${n / 3600} h`;
  if (n >= 60 && n % 60 === 0) return `${n / 60} min`;
  return `${n} s`;
}

/** Learn (again, when stale) your role and the slow mode of `slug`. */
export async function loadRole(slug, { fresh = false } = {}) {
  const known = roles.get(slug);
  const wasModerator = canModerate(slug);
  if (asking.has(slug)) {
    if (fresh) askAgain.add(slug); // the answer on its way may predate what we just did
    return;
  }
  if (!fresh && known && Date.now() - known.at < ROLE_FRESH_MS) return;
  asking.add(slug);
  try {
    const data = await api(`/api/rooms/${encodeURIComponent(slug)}/members?q=`);
    roles.set(slug, {
      moderator: Boolean(data.me?.moderator), slow: data.slow_seconds ?? 0, at: Date.now(),
      banned: Array.isArray(data.banned) ? data.banned : null, muted: Array.isArray(data.muted) ? data.muted : null,
    });
  } catch {
    // A room we may not read (or an older server): nothing to moderate, no slow mode known.
    roles.set(slug, { moderator: false, slow: 0, at: Date.now(), banned: null, muted: null });
  } finally {
    asking.delete(slug);
  }
  // The online list is drawn again only for a new role: a redraw would drop the focus from
  // the menu button a moderation action just gave it back to.
  if (slug === state.active && canModerate(slug) !== wasModerator) applyRole();
  else if (slug === state.active) {
    renderSlowMode();
    renderBanned();
  }
  if (askAgain.delete(slug)) loadRole(slug, { fresh: true });
}

/** Show or hide what only moderators get, for the open room. */
export function applyRole() {
  ui.messages.classList.toggle("can-moderate", canModerate(state.active));
  renderSlowMode();
  renderPresence();
  renderBanned();
}

// --- plain words for refusals ----------------------------------------------------------

/** What a refused edit, delete or react means, for a toast. */
export function changeProblem(err, slug, lead) {
  if (err.code === "forbidden" && /\bmuted\b/.test(err.message)) return `You are muted in #${slug}.`;
  if (err.code === "rate_limited") return `You are going too fast: wait ${Math.ceil(err.frame?.retry_after ?? 1)} s.`;
  if (err.code === "not_found") return `${lead}: the message was deleted.`;
  return `${lead}: ${err.message}`;
}

/** Why a send failed, in the pending row. */
export function publishProblem(p) {
  const { code, detail = "error" } = p.error ?? {};
  if (code === "forbidden" && /\bmuted\b/.test(detail)) return `You are muted in #${p.room}`;
  if (code === "forbidden" && /\bbanned\b/.test(detail)) return `You are banned from #${p.room}`;
  return `Not sent: ${detail}`;
}

client.addEventListener("publish", ({ detail }) => {
  if (detail.status === "failed" && detail.room === state.active && detail.error?.code === "forbidden") {
    toast(publishProblem(detail));
  }
});

/**
 * Slow mode, checked before sending: the wait left, in seconds (0: send now). The server
 * holds the rule; this spares a send it would turn back, which the client then holds,
 * unseen, in its queue until the wait is over. Our last message counts from when this page
 * sent it, or, after a reload, from its time on the server.
 */
export function slowModeWait(slug) {
  const slow = roles.get(slug)?.slow ?? 0;
  if (!slow || canModerate(slug)) return 0;
  const stored = Date.parse(rooms.get(slug)?.list.findLast((m) => m.user === ME)?.ts ?? "") || 0;
  const since = Math.max(lastSent.get(slug) ?? 0, stored);
  return Math.min(slow, Math.max(0, Math.ceil((since + slow * 1000 - Date.now()) / 1000)));
}

export function noteSent(slug) {
  lastSent.set(slug, Date.now());
}

// --- the per-user menu --------------------------------------------------------------------

// `muted`: offered only to someone muted (true) or not muted (false), when the page knows.
const ACTIONS = [
  { action: "kick", label: "Kick", confirm: "Kick", done: (u, r) => `${u} was removed from #${r}.` },
  { action: "ban", label: "Ban", confirm: "Ban", done: (u, r) => `${u} is banned from #${r}.` },
  { action: "mute", label: "Mute", muted: false, done: (u, r) => `${u} is muted in #${r}: they can read but not post.` },
  { action: "unmute", label: "Unmute", muted: true, done: (u, r) => `${u} can post in #${r} again.` },
];
const ASK = {
  kick: (u, r) => [`Kick ${u} from #${r}?`, "They leave the room now. They can join a public room again."],
  ban: (u, r) => [`Ban ${u} from #${r}?`, "They leave the room now and cannot read or join it until unbanned."],
};

const menu = h("div", "menu");
menu.setAttribute("role", "menu");
menu.hidden = true;
document.body.append(menu);

/** The "moderate" button of one user in the online list (moderators only). */
export function userMenuButton(user) {
  const button = h("button", "icon-btn member-menu-btn");
  button.type = "button";
  button.setAttribute("aria-haspopup", "menu");
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-label", `Moderate ${user}`);
  button.title = `Moderate ${user}`;
  button.append(icon("more"));
  button.addEventListener("click", () => (menu.trigger === button ? closeMenu() : openMenu(button, user)));
  return button;
}

function openMenu(trigger, user) {
  closeMenu();
  const slug = state.active;
  menu.trigger = trigger;
  menu.setAttribute("aria-label", `Moderate ${user}`);
  const muted = roles.get(slug)?.muted;
  const isMuted = muted ? muted.includes(user) : null; // null: not known (an older server)
  menu.replaceChildren(
    ...ACTIONS.filter((a) => a.muted === undefined || isMuted === null || a.muted === isMuted).map((a) => {
      const item = h("button", `menu-item${a.confirm ? " danger" : ""}`, a.label);
      item.type = "button";
      item.setAttribute("role", "menuitem");
      item.dataset.action = a.action;
      item.addEventListener("click", () => {
        closeMenu({ refocus: true });
        moderate(slug, user, a);
      });
      return item;
    }),
  );
  menu.hidden = false;
  trigger.setAttribute("aria-expanded", "true");
  const at = trigger.getBoundingClientRect();
  const { width, height } = menu.getBoundingClientRect();
  menu.style.left = `${Math.max(8, at.right - width)}px`;
  menu.style.top = `${Math.min(at.bottom + 4, window.innerHeight - height - 8)}px`;
  menu.firstElementChild.focus();
}

function closeMenu({ refocus = false } = {}) {
  if (menu.hidden) return;
  menu.hidden = true;
  menu.trigger?.setAttribute("aria-expanded", "false");
  if (refocus && menu.trigger?.isConnected) menu.trigger.focus();
  menu.trigger = null;
}

menu.addEventListener("keydown", (ev) => {
  const items = [...menu.children];
  const at = items.indexOf(document.activeElement);
  if (ev.key === "ArrowDown") items[(at + 1) % items.length].focus();
  else if (ev.key === "ArrowUp") items[(at + items.length - 1) % items.length].focus();
  else if (ev.key === "Escape" || ev.key === "Tab") closeMenu({ refocus: true });
  else return;
  ev.preventDefault();
  ev.stopPropagation();
});
document.addEventListener("pointerdown", (ev) => {
  if (!menu.hidden && !menu.contains(ev.target) && !menu.trigger?.contains(ev.target)) closeMenu();
});

async function moderate(slug, user, { action, confirm, done }) {
  if (confirm) {
    const [title, text] = ASK[action](user, slug);
    if (!(await confirmAction({ title, text, confirm }))) return;
  }
  try {
    await post(slug, { action, user });
    toast(done(user, slug));
  } catch (err) {
    toast(`Could not ${action} ${user}: ${err.message}`);
  } finally {
    loadRole(slug, { fresh: true }); // who is muted and banned now
  }
}

function post(slug, body) {
  return api(`/api/rooms/${encodeURIComponent(slug)}/moderation`, { method: "POST", body: JSON.stringify(body) });
}

// --- the room's banned users (moderators only) -------------------------------------------
// Not online in the room, so never in the online list: a list of their own, under it.

const bannedBox = h("section", "banned");
bannedBox.setAttribute("aria-labelledby", "banned-heading");
const bannedHeading = h("h2", "side-heading");
bannedHeading.id = "banned-heading";
const bannedList = h("ul", "member-list banned-list");
bannedList.id = "banned";
bannedList.setAttribute("aria-labelledby", "banned-heading");
bannedBox.append(bannedHeading, bannedList);
bannedBox.hidden = true;
ui.online.after(bannedBox);

export function renderBanned() {
  const slug = state.active;
  const banned = (canModerate(slug) && roles.get(slug)?.banned) || [];
  // Where the keyboard was: the same row after the list is drawn again, else the next Unban.
  const focused = bannedList.contains(document.activeElement) ? document.activeElement.closest("li").dataset.user : null;
  bannedBox.hidden = banned.length === 0;
  bannedHeading.textContent = `Banned — ${banned.length}`;
  bannedList.replaceChildren(
    ...banned.map((user) => {
      const li = h("li", "member");
      li.dataset.user = user;
      const button = h("button", "btn btn-quiet unban-btn", "Unban");
      button.type = "button";
      button.setAttribute("aria-label", `Unban ${user}`);
      button.title = `Lift ${user}'s ban from #${slug}`;
      button.addEventListener("click", () => unban(slug, user, button));
      li.append(avatar(user), h("span", "member-name", user), button);
      return li;
    }),
  );
  if (focused !== null) {
    const row = [...bannedList.children].find((li) => li.dataset.user === focused) ?? bannedList.firstElementChild;
    row?.querySelector("button").focus();
  }
}

async function unban(slug, user, button) {
  // aria-disabled, not disabled: a disabled button drops the focus, which renderBanned keeps.
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  try {
    await post(slug, { action: "unban", user });
    toast(`${user} is no longer banned from #${slug}.`);
  } catch (err) {
    toast(`Could not unban ${user}: ${err.message}`);
    button.removeAttribute("aria-disabled");
  } finally {
    loadRole(slug, { fresh: true });
  }
}

// --- slow mode ----------------------------------------------------------------------------

const slowBox = h("label", "slow-mode");
const slowText = h("span", "slow-mode-text", "Slow mode");
const slowSelect = h("select", "slow-mode-select");
slowSelect.id = "slow-mode";
for (const n of SLOW_CHOICES) {
  const option = h("option", "", n ? seconds(n) : "Off");
  option.value = String(n);
  slowSelect.append(option);
}
slowBox.append(slowText, slowSelect);
slowBox.hidden = true;
// In the online panel, with the other moderation tools: the room header has no room on phones.
ui.online.closest("aside").prepend(slowBox);

export function renderSlowMode() {
  const known = roles.get(state.active);
  const slow = known?.slow ?? 0;
  const mod = canModerate(state.active);
  slowBox.hidden = !known || (!mod && !slow);
  slowSelect.hidden = !mod;
  slowText.textContent = mod ? "Slow mode" : `Slow mode: ${seconds(slow)}`;
  if (mod) {
    if (!SLOW_CHOICES.includes(slow) && !slowSelect.querySelector(`option[value="${slow}"]`)) {
      const option = h("option", "", seconds(slow));
      option.value = String(slow);
      slowSelect.append(option);
    }
    slowSelect.value = String(slow);
  }
}

slowSelect.addEventListener("change", async () => {
  const slug = state.active;
  const wanted = Number(slowSelect.value);
  slowSelect.disabled = true;
  try {
    await post(slug, { action: "slow", seconds: wanted });
    const known = roles.get(slug);
    if (known) known.slow = wanted;
    toast(wanted ? `Slow mode in #${slug}: one message every ${seconds(wanted)} per person.` : `Slow mode is off in #${slug}.`);
  } catch (err) {
    toast(`Could not change slow mode: ${err.message}`);
  } finally {
    slowSelect.disabled = false;
    if (slug === state.active) renderSlowMode();
  }
});

// A reconnect may follow a change of role: ask again for the room on screen.
client.addEventListener("subscribed", ({ detail }) => {
  if (detail.room === state.active && rooms.has(detail.room)) loadRole(detail.room, { fresh: !detail.fresh });
});
