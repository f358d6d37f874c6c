// DOM lookups and small element builders. User data goes into the page through
// textContent and attributes only, never through innerHTML.

const $ = (id) => document.getElementById(id);
export const ui = {
  banner: $("banner"), bannerText: $("banner-text"), bannerRetry: $("banner-retry"),
  roomList: $("room-list"), joinForm: $("join-room-form"), newForm: $("new-room-form"), newError: $("new-room-error"),
  title: $("room-title"), topic: $("room-topic"), scroller: $("scroller"), messages: $("messages"), pending: $("pending"),
  historyStatus: $("history-status"), jumpNew: $("jump-new"), typing: $("typing"), composerForm: $("composer-form"),
  composer: $("composer"), charCount: $("char-count"), online: $("online"), onlineCount: $("online-count"),
  membersToggle: $("members-toggle"), membersCount: $("members-count"), sidebarToggle: $("sidebar-toggle"),
  scrim: $("scrim"), empty: $("room-empty"), emptyTitle: $("room-empty-title"), emptyText: $("room-empty-text"),
  toast: $("toast"),
};

export function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const ICONS = {
  hash: "M9 3 7 21M17 3l-2 18M4 8h17M3 16h17",
  lock: "M6 11h12v10H6zM8 11V7a4 4 0 0 1 8 0v4",
  react: "M20.5 12.5A8.5 8.5 0 1 1 11.5 3.5M8.5 14.5s1.3 1.8 3.5 1.8 3.5-1.8 3.5-1.8M9 9.5h.01M15 9.5h.01M19 2v6M16 5h6",
  edit: "M4 20h4L19 9l-4-4L4 16zM13.5 6.5l4 4",
  trash: "M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
  more: "M5 12h.01M12 12h.01M19 12h.01",
};

export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

export function hue(name) {
  let n = 0;
  for (const ch of name) n = (n * 31 + ch.codePointAt(0)) >>> 0;
  return `hue-${n % 8}`;
}

export function avatar(name) {
  const node = h("span", `avatar ${hue(name)}`, [...name][0]?.toUpperCase() ?? "?");
  node.setAttribute("aria-hidden", "true");
  return node;
}

export function toast(text) {
  ui.toast.textContent = text;
  ui.toast.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (ui.toast.hidden = true), 5000);
}
