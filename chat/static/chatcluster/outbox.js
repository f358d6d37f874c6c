// ChatClient's (client.js) publishes waiting to land: sent one at a time in the order
// written, so a user's messages are stored in that order even when the rate limit turns
// one back; each keeps its idempotency key, so one sent again after a drop is stored once.
// The Python client's chat/client/outbox.py does the same.

import { retryDelay } from "./policy.js";

// Errors after which a publish stays pending, to be sent again with its key.
const RETRIED = ["rate_limited", "unavailable"];

export class Outbox {
  /** `emit(p)` reports a publish whose status changed (client.js makes it a `publish` event). */
  constructor(emit) {
    this.pending = new Map(); // ref -> {ref, room, body, key, status, seq, error}, in the order written
    this.inflight = null; // ref of the one publish awaiting its answer
    this.holdUntil = 0; // rate limited: publish nothing before this time
    this.emit = emit;
  }

  add(p) {
    this.pending.set(p.ref, p);
    this.emit(p);
  }

  /** Queue a `failed` publish again; false when there is none by `ref`. */
  retry(ref) {
    const p = this.pending.get(ref);
    if (!p || p.status !== "failed") return false;
    Object.assign(p, { status: "sending", error: null });
    this.emit(p);
    return true;
  }

  discard(ref) {
    const p = this.pending.get(ref);
    if (!p) return;
    this.pending.delete(ref);
    this.emit({ ...p, status: "discarded" });
    this.landed(ref);
  }

  /** The publish to send now, marked in flight; null while one awaits its answer or a limit holds. */
  next(now) {
    if (this.inflight || now < this.holdUntil) return null;
    const p = [...this.pending.values()].find((q) => q.status === "sending");
    if (p) this.inflight = p.ref;
    return p ?? null;
  }

  /** The socket is gone: what was in flight goes again, with its key, on the next. */
  dropped() {
    this.inflight = null;
  }

  /** Its answer came (or it no longer waits for one): the next publish may go. */
  landed(ref) {
    if (this.inflight === ref) this.inflight = null;
  }

  /** `p` is stored as `seq`; `delivered`: the room's stream has passed it already (or is not followed). */
  acked(p, seq, delivered) {
    p.seq = seq;
    if (delivered) this.settle(p);
    else {
      p.status = "acked";
      this.emit(p);
    }
    this.landed(p.ref);
  }

  /** Error frame `f` answered `p`: the ms until it is sent again (with the same key), or null when it failed. */
  refused(p, f, now) {
    this.landed(p.ref);
    if (RETRIED.includes(f.code)) {
      const wait = retryDelay(f);
      this.holdUntil = now + wait;
      // Still sending, but held: a page can say why (slow mode, a rate limit) and until when.
      this.emit({ ...p, error: { code: f.code, detail: f.detail }, retryAt: now + wait });
      return wait;
    }
    Object.assign(p, { status: "failed", error: { code: f.code, detail: f.detail } });
    this.emit(p);
    return null;
  }

  /** Acked publishes the room's stream has now passed are done. */
  settleUpTo(room, last) {
    for (const p of this.pending.values()) if (p.room === room && p.seq !== null && p.seq <= last) this.settle(p);
  }

  settle(p) {
    this.pending.delete(p.ref);
    this.emit({ ...p, status: "done" });
  }
}
