// Shared page state: the page config, the one ChatClient, and the per-room view state.

import { ChatClient } from "./client.js";

export const config = JSON.parse(document.getElementById("chat-config").textContent);
export const ME = config.user;
export const MAX_BODY = config.maxBody;
// Rooms one socket may follow (CHAT_MAX_SUBSCRIPTIONS).
export const MAX_ROOMS = config.maxRooms ?? Infinity;
// Where a user with no rooms lands (CHAT_DEFAULT_ROOM); empty: the room directory.
export const DEFAULT_ROOM = config.defaultRoom ?? "";

export const client = new ChatClient();
// slug -> room view state (see ensureRoom): the rooms the user joined, plus the room on
// screen when it is only previewed. The socket follows exactly these.
export const rooms = new Map();
export const pendingSends = new Map(); // ref -> publish detail from the client
// active: the open room's slug; newWhileAway: live messages arrived below the viewport;
// roomsLoaded: the server's list of joined rooms has arrived once.
export const state = { active: null, newWhileAway: 0, roomsLoaded: false };
