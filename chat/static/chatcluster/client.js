// ChatClient: the /ws/ protocol (docs/protocol.md) with no DOM in sight.
//
// One socket, many rooms. Per room it keeps the last contiguous seq, drops repeats, holds
// back out-of-order events until the gap is repaired (order.js), and re-subscribes with
// `since` after every reconnect, so the UI sees each message, edit, delete and react once
// and in order. Events (CustomEvent, payload in `detail`): state, message, edit, delete,
// react, subscribed, reset, presence, typing, publish, room-error, error, unauthorized.
// Types: client.d.ts.
// In Node pass `url` (or a function, maybe async, for a fresh ?token= per connect) and `WebSocketImpl`.

import { RoomView } from "./order.js";
import { Outbox } from "./outbox.js";
import { CLOSE_ORIGIN, CLOSE_UNAUTHENTICATED, backoffDelay, reconnectDelay, retryDelay } from "./policy.js";
import { Requests } from "./requests.js";

export { backoffDelay };

// Below the 30-60 s idle timeout of common proxies and load balancers.
const PING_EVERY_MS = 20_000;
// A pong slower than this means a dead TCP path the browser has not noticed yet.
const PONG_WAIT_MS = 10_000;
// Others clear "is typing" after ~4 s, so a steady typist re-announces every 3 s.
const TYPING_EVERY_MS = 3_000;
// A gap still open this long after a repair answered gets repaired again.
const REPAIR_RECHECK_MS = 1_000;

export const STATES = ["connecting", "online", "reconnecting", "catching-up", "offline"];

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
    this.rooms = new Map(); // slug -> RoomView
    this.requests = new Requests(); // history, edit, delete, react
    this.outbox = new Outbox((p) => this._emit("publish", { ...p }));
    this.catching = new Set(); // rooms with a `since` subscribe in flight
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
    this.requests.rejectAll(new Error("client closed"));
    this._drop();
    this._setState("offline");
  }

  /** Skip the backoff wait (the browser came back online, the tab became visible). */
  reconnectNow() {
    if (!this.stopped && !this.ws && !this.opening) this._open();
  }

  subscribe(room) {
    if (this.rooms.has(room)) return;
    this.rooms.set(room, new RoomView());
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

  /** Publishes not yet settled, by ref. */
  get pending() {
    return this.outbox.pending;
  }

  /** Queue a message; it stays pending (and is re-sent with the same key) until acked. */
  publish(room, body) {
    const ref = this._ref();
    // Others drop our "is typing" when the message lands: the next keystroke announces afresh.
    const r = this.rooms.get(room);
    if (r) r.typedAt = 0;
    this.outbox.add({ ref, room, body, key: randomId(), status: "sending", seq: null, error: null });
    this._pump();
    return ref;
  }

  retry(ref) {
    if (this.outbox.retry(ref)) this._pump();
  }

  discard(ref) {
    this.outbox.discard(ref);
    this._pump();
  }

  /** Messages of `room` before seq `before` (the newest when null), oldest first. */
  history(room, before = null, limit = 50) {
    const frame = { type: "history", room, limit };
    if (before !== null && before !== undefined) frame.before = before;
    return this._request(frame, true);
  }

  /** Change the body of your message `target`; resolves with the `ack` frame. */
  edit(room, target, body) {
    // Not re-sent after a drop: a second edit would be stored as a change of its own.
    return this._request({ type: "edit", room, target, body }, false);
  }

  /** Delete message `target`; resolves with the `ack` frame. */
  deleteMessage(room, target) {
    // A repeat acks the first delete's seq, so sending it again after a drop is safe.
    return this._request({ type: "delete", room, target }, true);
  }

  /** Give (`on`) or take back a reaction to message `target`; resolves with the `ack` frame. */
  react(room, target, emoji, on = true) {
    // Asking for the state a reaction already has stores nothing: safe to send again after a drop.
    return this._request({ type: "react", room, target, emoji, on }, true);
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
    this.requests.opened((frame) => this._send(frame));
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
    const { delay, attempt } = reconnectDelay(code, this.attempt);
    this.attempt = attempt;
    this._setState("reconnecting", { code, retryAt: Date.now() + delay, ...(error && { error }) });
    this.timers.retry = setTimeout(() => this._open(), delay);
  }

  /** Forget the current socket (if any) without waiting for its closing handshake. */
  _drop() {
    clearTimeout(this.timers.ping);
    clearTimeout(this.timers.pong);
    const ws = this.ws;
    this.ws = this.opening = null;
    this.outbox.dropped();
    for (const r of this.rooms.values()) r.subscribed = false;
    this.requests.dropped();
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
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  _request(frame, resend) {
    frame.ref = this._ref();
    return this.requests.add(frame, resend, (f) => this._send(f));
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

  /** A frame of a room's seq stream: a message, edit, delete or react (or a newer server's event). */
  _onSeq(f) {
    const r = this.rooms.get(f.room);
    if (!r || !r.hold(f)) return; // not ours, or a repeat
    this._drain(r);
    if (r.gapped() && r.subscribed && !this.catching.has(f.room)) this._subscribe(f.room); // repair the gap
  }

  /** Deliver what the room's view now has in order, each as an event named by its frame type. */
  _drain(r) {
    for (let f = r.next(); f; f = r.next()) {
      this._emit(f.type, f);
      this.outbox.settleUpTo(f.room, r.last);
    }
  }

  _onSubscribed(f) {
    const r = this.rooms.get(f.room);
    if (!r || f.ref !== r.subRef) return;
    this.catching.delete(f.room);
    const { fresh, reset } = r.onSubscribed(f);
    this._drain(r);
    this.outbox.settleUpTo(f.room, r.last);
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

  /** Send the oldest unsent publish, one at a time (outbox.js). */
  _pump() {
    if (!this.ws || this.ws.readyState !== 1) return;
    const p = this.outbox.next(Date.now());
    if (p) this._send({ type: "publish", room: p.room, body: p.body, key: p.key, ref: p.ref });
  }

  _onAck(f) {
    const p = this.pending.get(f.ref);
    if (!p) return this.requests.answer(f.ref, (req) => req.resolve(f)); // an edit, delete or react
    const r = this.rooms.get(p.room);
    this.outbox.acked(p, f.seq, !r || (r.last !== null && r.last >= f.seq));
    this._pump();
  }

  // --- frames ----------------------------------------------------------------------

  _onFrame(text) {
    const f = JSON.parse(text); // the server only ever sends JSON text frames
    switch (f.type) {
      case "subscribed":
        return this._onSubscribed(f);
      case "ack":
        return this._onAck(f);
      case "presence":
        if (!this.rooms.has(f.room)) return;
        this.rooms.get(f.room).changePresence(f.joined ?? [], f.left ?? []);
        return this._emitPresence(f.room, f.joined ?? [], f.left ?? []);
      case "typing":
        return this._emit("typing", { room: f.room, user: f.user });
      case "history":
        return this.requests.answer(f.ref, (req) => req.resolve(f.messages));
      case "pong":
        return clearTimeout(this.timers.pong);
      case "added":
        return this._emit("added", { room: f.room });
      case "error":
        return this._onError(f);
      default:
        // message, edit, delete, react: one seq stream. A newer server's frame with a seq is
        // in it too; skipping it would leave a gap that no replay could fill.
        if (Number.isInteger(f.seq) && typeof f.room === "string") this._onSeq(f);
    }
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
      const wait = this.outbox.refused(p, f, Date.now());
      if (wait !== null) {
        clearTimeout(this.timers.hold);
        this.timers.hold = setTimeout(() => this._pump(), wait);
      }
      return this._pump();
    }
    const refused = (req) => req.reject(Object.assign(new Error(f.detail), { code: f.code, frame: f }));
    if (this.requests.answer(f.ref, refused)) return;
    for (const [room, r] of this.rooms) {
      if (r.subRef !== f.ref) continue;
      this.catching.delete(room);
      if (f.code === "bad_request" && r.since !== null) {
        r.restart(); // the server holds less than we do (its data was reset)
        this._subscribe(room);
      } else if (f.code === "unavailable") {
        // Redis or the database is briefly away: ask again shortly, keeping our place.
        clearTimeout(r.recheck);
        r.recheck = setTimeout(() => this.rooms.has(room) && this._subscribe(room), retryDelay(f));
      } else {
        this.rooms.delete(room);
        this._emit("room-error", { room, code: f.code, detail: f.detail });
      }
      return this._updateState();
    }
    this._emit("error", f);
  }
}
