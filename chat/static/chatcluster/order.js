// One room's view of its seq stream, for ChatClient (client.js): repeats dropped, order
// kept, events past a gap held until a replay fills it (docs/protocol.md, Sequence numbers
// and recovery; chat/client/rooms.py keeps the same rules in Python).

// Messages and the changes to them (edit, delete, react) count from one shared seq, so the
// view orders frames by seq alone, whatever their type: one that skipped a type would see a
// gap no replay could close.

export class RoomView {
  constructor() {
    this.last = null; // every event up to this seq was delivered; null until the first `subscribed`
    this.buffer = new Map(); // seq -> frame, held back past a gap (or before the first `subscribed`)
    this.presence = new Set();
    this.subscribed = false; // the current socket's subscribe was answered
    this.subRef = null; // the ref of the subscribe whose answer counts
    this.since = null; // the `since` that subscribe carried
    this.resetPending = false; // restarted: the next `subscribed` also emits `reset`
    this.typedAt = 0;
    this.recheck = undefined; // timer: repair again if a gap outlives its replay
  }

  /** Take `frame` in; false when its seq was already delivered (a replay overlapping live frames). */
  hold(frame) {
    if (this.last !== null && frame.seq <= this.last) return false;
    this.buffer.set(frame.seq, frame);
    return true;
  }

  /** The held frame that comes next in order (`last` moves to it), or null while a gap or no `last` holds them. */
  next() {
    if (this.last === null) return null;
    const frame = this.buffer.get(this.last + 1);
    if (!frame) {
      for (const seq of this.buffer.keys()) if (seq <= this.last) this.buffer.delete(seq);
      return null;
    }
    this.buffer.delete(frame.seq);
    this.last = frame.seq;
    return frame;
  }

  /** Frames are held past a gap (call after draining `next()`). */
  gapped() {
    return this.last !== null && this.buffer.size > 0;
  }

  /** Answered by `f`: a first answer starts `last` at the room's seq, and so does `recovered: false` (too much missed). */
  onSubscribed(f) {
    this.subscribed = true;
    const fresh = this.last === null;
    const reset = f.recovered === false || this.resetPending;
    this.resetPending = false;
    if (f.recovered === false || fresh) this.last = f.seq;
    this.presence = new Set(f.presence);
    return { fresh, reset };
  }

  changePresence(joined, left) {
    for (const u of joined) this.presence.add(u);
    for (const u of left) this.presence.delete(u);
  }

  /** The server holds less than we do (its data was reset): start over without `since`. */
  restart() {
    this.last = null;
    this.buffer.clear();
    this.resetPending = true;
  }
}
