// Shared page state: the page config, the one ChatClient, and the per-room view state.

import { ChatClient } from "./client.js";

export const config = JSON.parse(document.getElementById("chat-config").textContent);
export const ME = config.user;
export const MAX_BODY = config.maxBody;
// Rooms one socket may follow (CHAT_MAX_SUBSCRIPTIONS): the sidebar lists no more.
export const MAX_ROOMS = config.maxRooms ?? Infinity;

export const client = new ChatClient();
export const rooms = new Map(); // slug -> room view state, see ensureRoom
export const pendingSends = new Map(); // ref -> publish detail from the client
// active: the open room's slug; newWhileAway: live messages arrived below the viewport;
// roomsLoaded: the server's room list (with read markers) has arrived once.
export const state = { active: null, newWhileAway: 0, roomsLoaded: false };
