// ChatClient: the /ws/ protocol (docs/protocol.md) with no DOM in sight.
//
// One socket, many rooms. Per room it keeps the last contiguous seq, drops repeats,
// holds back out-of-order messages until the gap is repaired, and re-subscribes with
// `since` after every reconnect, so the UI sees each message once and in order.
// Events (CustomEvent, payload in `detail`): state, message, subscribed, reset,
// presence, typing, publish, room-error, error, unauthorized. Types: client.d.ts.
// In Node pass `url` (or a function, maybe async, for a fresh ?token= per connect) and `WebSocketImpl`.

// Below the 30-60 s idle timeout of common proxies and load balancers.
const PING_EVERY_MS = 20_000;
// A pong slower than this means a dead TCP path the browser has not noticed yet.
const PONG_WAIT_MS = 10_000;
// Backoff: full jitter over base * 2^attempt, capped so a user waits at most ~10 s.
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
// 1012 means "this node is draining, go elsewhere": come back at once, spread a little.
const DRAIN_SPREAD_MS = 300;
// Others clear "is typing" after ~4 s, so a steady typist re-announces every 3 s.
const TYPING_EVERY_MS = 3_000;
// A gap still open this long after a repair answered gets repaired again.
const REPAIR_RECHECK_MS = 1_000;

const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_ORIGIN = 4403;
const CLOSE_DRAINING = 1012;
// 1013 "try again later": the node is busy (a reconnect storm) or a backend is briefly
// away. Wait at least BUSY_FLOOR_MS, then a jittered backoff, so a storm spreads out.
const CLOSE_TRY_AGAIN = 1013;
const BUSY_FLOOR_MS = 250;

export const STATES = ["connecting", "online", "reconnecting", "catching-up", "offline"];

export function backoffDelay(attempt, random = Math.random) {
  return Math.round(random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
}

export function randomId() {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function defaultUrl() {
  const loc = globalThis.location;
  if (!loc) throw new TypeError("ChatClient: no `location` here: pass `url`, e.g. ws://host:port/ws/?token=...");
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/ws/`;
}

export class ChatClient extends EventTarget {
  constructor({ url = defaultUrl(), WebSocketImpl = globalThis.WebSocket } = {}) {
    super();
    if (typeof WebSocketImpl !== "function") throw new TypeError("ChatClient: no WebSocket: pass WebSocketImpl");
    this.url = url; // a string or URL, or a function (maybe async) that gives one, called per connect
    this.WebSocketImpl = WebSocketImpl;
    this.ws = this.opening = null; // opening: a token object while an async url() resolves
    this.state = "connecting";
    this.attempt = 0;
    this.everOpen = false;
    this.stopped = false;
    this.timers = {};
    this.refPrefix = randomId().slice(0, 8);
    this.refCount = 0;
    this.rooms = new Map(); // slug -> {last, buffer, presence, subscribed, subRef, since}
    this.requests = new Map(); // ref -> {frame, resolve, reject} (history)
    this.pending = new Map(); // ref -> {ref, room, body, key, status, seq, error}
    this.catching = new Set(); // rooms with a `since` subscribe in flight
    this.inflight = null; // ref of the one publish awaiting its answer
    this.holdUntil = 0; // rate limited: publish nothing before this time
  }

  // --- public API ----------------------------------------------------------------

  connect() {
    this.stopped = false;
    if (!this.ws && !this.opening) this._open();
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timers.retry); // a reconnect already planned must not reopen the socket
    for (const r of this.rooms.values()) clearTimeout(r.recheck);
    this._drop();
    for (const req of this.requests.values()) req.reject(new Error("client closed"));
    this.requests.clear();
    this._setState("offline");
  }

  /** Skip the backoff wait (the browser came back online, the tab became visible). */
  reconnectNow() {
    if (!this.stopped && !this.ws && !this.opening) this._open();
  }

  subscribe(room) {
    if (this.rooms.has(room)) return;
    this.rooms.set(room, { last: null, buffer: new Map(), presence: new Set(), subscribed: false, subRef: null });
    this._subscribe(room);
  }

  unsubscribe(room) {
    if (!this.rooms.delete(room)) return;
    this.catching.delete(room);
    this._send({ type: "unsubscribe", room });
  }

  lastSeq(room) {
    return this.rooms.get(room)?.last ?? null;
  }

  presence(room) {
    return [...(this.rooms.get(room)?.presence ?? [])].sort();
  }

  /** Queue a message; it stays pending (and is re-sent with the same key) until acked. */
  publish(room, body) {
    const p = { ref: this._ref(), room, body, key: randomId(), status: "sending", seq: null, error: null };
    this.pending.set(p.ref, p);
    // Others drop our "is typing" when the message lands: the next keystroke announces afresh.
    const r = this.rooms.get(room);
    if (r) r.typedAt = 0;
    this._emitPublish(p);
    this._pump();
    return p.ref;
  }

  retry(ref) {
    const p = this.pending.get(ref);
    if (!p || p.status !== "failed") return;
    Object.assign(p, { status: "sending", error: null });
    this._emitPublish(p);
    this._pump();
  }

  discard(ref) {
    const p = this.pending.get(ref);
    if (!p) return;
    this.pending.delete(ref);
    this._emitPublish({ ...p, status: "discarded" });
    this._landed(ref);
  }

  /** Messages of `room` before seq `before` (the newest when null), oldest first. */
  history(room, before = null, limit = 50) {
    const frame = { type: "history", room, limit, ref: this._ref() };
    if (before !== null && before !== undefined) frame.before = before;
    return new Promise((resolve, reject) => {
      this.requests.set(frame.ref, { frame, resolve, reject });
      this._send(frame);
    });
  }

  typing(room) {
    const r = this.rooms.get(room);
    const now = Date.now();
    if (!r || !r.subscribed || now - (r.typedAt ?? 0) < TYPING_EVERY_MS) return;
    r.typedAt = now;
    this._send({ type: "typing", room });
  }

  // --- connection ----------------------------------------------------------------

  _open() {
    clearTimeout(this.timers.retry);
    this._setState(this.everOpen ? "reconnecting" : "connecting");
    if (typeof this.url !== "function") return this._openSocket(this.url);
    // A url() that fails (say, no fresh token yet) counts as a failed connect: retry with backoff.
    const opening = (this.opening = {});
    Promise.resolve()
      .then(() => this.url())
      .then((url) => this.opening === opening && this._openSocket(url))
      .catch((error) => this.opening === opening && this._onClose(1006, error));
  }

  _openSocket(url) {
    const ws = (this.ws = new this.WebSocketImpl(url)); // if this throws, `opening` still names this connect
    this.opening = null;
    ws.onopen = () => this._onOpen();
    ws.onmessage = (ev) => this._onFrame(ev.data);
    ws.onclose = (ev) => this._onClose(ev.code);
    ws.onerror = () => {}; // a close follows; the ws package throws on an unheard error
  }

  _onOpen() {
    this.everOpen = true;
    this.catching.clear();
    for (const room of this.rooms.keys()) this._subscribe(room);
    for (const req of this.requests.values()) this._send(req.frame);
    this._pump();
    this._updateState();
    this._ping();
  }

  _onClose(code, error) {
    this._drop();
    if (this.stopped) return;
    if (code === CLOSE_UNAUTHENTICATED || code === CLOSE_ORIGIN) {
      this.stopped = true; // retrying cannot help: log in again, or open the page from our own origin
      this._setState("offline", { code });
      if (code === CLOSE_UNAUTHENTICATED) this._emit("unauthorized", {});
      return;
    }
    let delay;
    if (code === CLOSE_DRAINING) delay = Math.round(Math.random() * DRAIN_SPREAD_MS);
    else if (code === CLOSE_TRY_AGAIN) delay = BUSY_FLOOR_MS + backoffDelay(Math.max(2, this.attempt++));
    else delay = backoffDelay(this.attempt++);
    this._setState("reconnecting", { code, retryAt: Date.now() + delay, ...(error && { error }) });
    this.timers.retry = setTimeout(() => this._open(), delay);
  }

  /** Forget the current socket (if any) without waiting for its closing handshake. */
  _drop() {
    clearTimeout(this.timers.ping);
    clearTimeout(this.timers.pong);
    const ws = this.ws;
    this.ws = this.opening = null;
    this.inflight = null;
    for (const r of this.rooms.values()) r.subscribed = false;
    this.catching.clear();
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null;
    if (ws && ws.readyState <= 1) ws.close();
  }

  _ping() {
    this.timers.ping = setTimeout(() => {
      this._send({ type: "ping" });
      this.timers.pong = setTimeout(() => this._onClose(1006), PONG_WAIT_MS);
      this._ping();
    }, PING_EVERY_MS);
  }

  _send(frame) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(frame));
  }

  _ref() {
    return `${this.refPrefix}-${++this.refCount}`; // unique per page: a random prefix plus a counter
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state, extra = {}) {
    this.state = state;
    this._emit("state", { state, ...extra });
  }

  _updateState() {
    if (!this.ws || this.ws.readyState !== 1) return;
    const state = this.catching.size ? "catching-up" : "online";
    if (state === "online") this.attempt = 0; // reset only once fully caught up: no tight loops
    if (state !== this.state) this._setState(state);
  }

  // --- rooms -----------------------------------------------------------------------

  _subscribe(room) {
    const r = this.rooms.get(room);
    const frame = { type: "subscribe", room, ref: this._ref() };
    if (r.last !== null) {
      frame.since = r.last;
      this.catching.add(room);
    }
    r.subRef = frame.ref;
    r.since = frame.since ?? null;
    this._send(frame);
    this._updateState();
  }

  _onMessage(m) {
    const r = this.rooms.get(m.room);
    if (!r || (r.last !== null && m.seq <= r.last)) return; // not ours, or a repeat
    if (r.last === null || m.seq > r.last + 1) {
      r.buffer.set(m.seq, m);
      if (r.last !== null && r.subscribed && !this.catching.has(m.room)) this._subscribe(m.room); // repair the gap
      return;
    }
    this._deliver(r, m);
    this._drain(r);
  }

  _deliver(r, m) {
    r.last = m.seq;
    this._emit("message", m);
    this._settleUpTo(m.room, r.last);
  }

  /** Acked publishes the room's stream has now passed are done. */
  _settleUpTo(room, last) {
    for (const p of this.pending.values()) if (p.room === room && p.seq !== null && p.seq <= last) this._settle(p);
  }

  _drain(r) {
    for (const seq of r.buffer.keys()) if (seq <= r.last) r.buffer.delete(seq);
    while (r.buffer.has(r.last + 1)) {
      const m = r.buffer.get(r.last + 1);
      r.buffer.delete(m.seq);
      this._deliver(r, m);
    }
  }

  _onSubscribed(f) {
    const r = this.rooms.get(f.room);
    if (!r || f.ref !== r.subRef) return;
    r.subscribed = true;
    this.catching.delete(f.room);
    const fresh = r.last === null;
    const reset = f.recovered === false || r.resetPending;
    r.resetPending = false;
    if (f.recovered === false || fresh) r.last = f.seq;
    this._drain(r);
    this._settleUpTo(f.room, r.last);
    r.presence = new Set(f.presence);
    this._emit("subscribed", { room: f.room, seq: f.seq, fresh });
    if (reset) this._emit("reset", { room: f.room, seq: f.seq });
    this._emitPresence(f.room, f.presence, []);
    if (r.buffer.size) {
      clearTimeout(r.recheck);
      r.recheck = setTimeout(() => {
        if (r.buffer.size && r.subscribed && !this.catching.has(f.room)) this._subscribe(f.room);
      }, REPAIR_RECHECK_MS);
    }
    this._updateState();
  }

  _emitPresence(room, joined, left) {
    this._emit("presence", { room, users: this.presence(room), joined, left });
  }

  // --- publishing ------------------------------------------------------------------

  /**
   * Send the oldest unsent publish, one at a time: a user's messages are stored in the
   * order they were written, even when the rate limit turns one of them back.
   */
  _pump() {
    if (this.inflight || Date.now() < this.holdUntil || !this.ws || this.ws.readyState !== 1) return;
    const p = [...this.pending.values()].find((q) => q.status === "sending");
    if (!p) return;
    this.inflight = p.ref;
    this._send({ type: "publish", room: p.room, body: p.body, key: p.key, ref: p.ref });
  }

  _landed(ref) {
    if (this.inflight === ref) this.inflight = null;
    this._pump();
  }

  _emitPublish(p) {
    this._emit("publish", { ...p });
  }

  _settle(p) {
    this.pending.delete(p.ref);
    this._emitPublish({ ...p, status: "done" });
  }

  _onAck(f) {
    const p = this.pending.get(f.ref);
    if (!p) return;
    p.seq = f.seq;
    const r = this.rooms.get(p.room);
    if (!r || (r.last !== null && r.last >= f.seq)) this._settle(p);
    else {
      p.status = "acked";
      this._emitPublish(p);
    }
    this._landed(p.ref);
  }

  // --- frames ----------------------------------------------------------------------

  _onFrame(text) {
    const f = JSON.parse(text); // the server only ever sends JSON text frames
    switch (f.type) {
      case "message":
        return this._onMessage(f);
      case "subscribed":
        return this._onSubscribed(f);
      case "ack":
        return this._onAck(f);
      case "presence": {
        const r = this.rooms.get(f.room);
        if (!r) return;
        for (const u of f.joined ?? []) r.presence.add(u);
        for (const u of f.left ?? []) r.presence.delete(u);
        return this._emitPresence(f.room, f.joined ?? [], f.left ?? []);
      }
      case "typing":
        return this._emit("typing", { room: f.room, user: f.user });
      case "history":
        return this._answer(f.ref, (req) => req.resolve(f.messages));
      case "pong":
        return clearTimeout(this.timers.pong);
      case "error":
        return this._onError(f);
    }
  }

  _answer(ref, settle) {
    const req = this.requests.get(ref);
    if (req) this.requests.delete(ref), settle(req);
    return Boolean(req);
  }

  _onError(f) {
    if (f.ref === undefined && f.room && this.rooms.has(f.room)) {
      // Not an answer: the server ended our subscription (we were removed from the room).
      this.rooms.delete(f.room);
      this.catching.delete(f.room);
      this._emit("room-error", { room: f.room, code: f.code, detail: f.detail });
      return this._updateState();
    }
    const p = this.pending.get(f.ref);
    if (p) {
      if (f.code === "rate_limited" || f.code === "unavailable") {
        // Both pass: keep the message pending and send it again, with the same key.
        const wait = f.code === "rate_limited" ? (f.retry_after ?? 1) * 1000 + 50 : 500 + backoffDelay(2);
        this.holdUntil = Date.now() + wait;
        clearTimeout(this.timers.hold);
        this.timers.hold = setTimeout(() => this._pump(), wait);
      } else {
        Object.assign(p, { status: "failed", error: { code: f.code, detail: f.detail } });
        this._emitPublish(p);
      }
      return this._landed(p.ref);
    }
    if (this._answer(f.ref, (req) => req.reject(Object.assign(new Error(f.detail), { code: f.code })))) return;
    for (const [room, r] of this.rooms) {
      if (r.subRef !== f.ref) continue;
      this.catching.delete(room);
      if (f.code === "bad_request" && r.since !== null) {
        // The server holds less than we do (its data was reset): start over.
        r.last = null;
        r.buffer.clear();
        r.resetPending = true;
        this._subscribe(room);
      } else if (f.code === "unavailable") {
        // Redis or the database is briefly away: ask again shortly, keeping our place.
        clearTimeout(r.recheck);
        r.recheck = setTimeout(() => this.rooms.has(room) && this._subscribe(room), 500 + backoffDelay(2));
      } else {
        this.rooms.delete(room);
        this._emit("room-error", { room, code: f.code, detail: f.detail });
      }
      return this._updateState();
    }
    this._emit("error", f);
  }
}
