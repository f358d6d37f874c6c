// Shared page state: the page config, the one ChatClient, and the per-room view state.

import { ChatClient } from "./client.js";

export const config = JSON.parse(document.getElementById("chat-config").textContent);
export const ME = config.user;
export const MAX_BODY = config.maxBody;
const READ_KEY = `relay:${ME}:read`;

export const client = new ChatClient();
export const rooms = new Map(); // slug -> room view state, see ensureRoom
export const pendingSends = new Map(); // ref -> publish detail from the client
// active: the open room's slug; newWhileAway: live messages arrived below the viewport.
export const state = { active: null, newWhileAway: 0 };
export const readSeqs = loadJson(READ_KEY, {});

function loadJson(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

export function saveReadSeqs() {
  localStorage.setItem(READ_KEY, JSON.stringify(readSeqs));
}
