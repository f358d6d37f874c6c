// Read markers: how far this user has read each room, kept on the server
// (POST /api/rooms/<slug>/read, `read` in GET /api/rooms), so unread counts survive a
// reload and agree across tabs and devices. The server only moves a marker forward.

import { api } from "./api.js";

// One POST per burst of reading, not one per message that scrolls past.
const REPORT_DELAY_MS = 700;

const readSeqs = new Map(); // slug -> highest seq read, as far as this page knows
const reported = new Map(); // slug -> highest seq the server has confirmed
const timers = new Map();

export function readUpTo(slug) {
  return readSeqs.get(slug);
}

/** The server's marker (null: the user never opened the room). Never moves ours back. */
export function learnRead(slug, seq) {
  if (seq === null || seq === undefined) return;
  readSeqs.set(slug, Math.max(readSeqs.get(slug) ?? 0, seq));
  reported.set(slug, Math.max(reported.get(slug) ?? 0, seq));
}

/** Mark `slug` read up to `seq`; true when that moved the marker. */
export function markReadUpTo(slug, seq) {
  if (seq === null || seq === undefined || seq <= (readSeqs.get(slug) ?? -1)) return false;
  readSeqs.set(slug, seq);
  clearTimeout(timers.get(slug));
  timers.set(slug, setTimeout(() => report(slug), REPORT_DELAY_MS));
  return true;
}

function report(slug, { keepalive = false } = {}) {
  timers.delete(slug);
  const seq = readSeqs.get(slug);
  if (seq === undefined || seq <= (reported.get(slug) ?? -1)) return;
  api(`/api/rooms/${slug}/read`, { method: "POST", body: JSON.stringify({ seq }), keepalive })
    .then((data) => learnRead(slug, data.read))
    // Not fatal: the next read in this room reports a higher seq anyway.
    .catch(() => {});
}

/** Send every marker still waiting for its delay: the page is being hidden or closed. */
export function flushReads() {
  for (const slug of [...timers.keys()]) {
    clearTimeout(timers.get(slug));
    report(slug, { keepalive: true });
  }
}
