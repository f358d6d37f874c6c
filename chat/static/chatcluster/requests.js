// ChatClient's (client.js) requests answered by ref: history, edit, delete, react. Each
// waits for its answer, also across reconnects; one that may not be sent twice fails
// when the socket it went out on drops unanswered.

export class Requests {
  constructor() {
    this.byRef = new Map(); // ref -> {frame, resolve, reject, resend, sent}
  }

  /**
   * The answer to `frame` (which carries its ref), sent now by `send` if it can, else on the
   * next socket. `resend`: safe to send again after a drop (the server answers a repeat alike).
   */
  add(frame, resend, send) {
    return new Promise((resolve, reject) => {
      const req = { frame, resolve, reject, resend, sent: false };
      this.byRef.set(frame.ref, req);
      req.sent = send(frame);
    });
  }

  /** Settle the request that `ref` answers; false when none waits for it. */
  answer(ref, settle) {
    const req = this.byRef.get(ref);
    if (req) this.byRef.delete(ref), settle(req);
    return Boolean(req);
  }

  /** A new socket: everything still waiting goes out on it. */
  opened(send) {
    for (const req of this.byRef.values()) req.sent = send(req.frame);
  }

  /** The socket dropped: a request sent on it that may not be sent again fails (the server may have done it). */
  dropped() {
    for (const [ref, req] of this.byRef) {
      if (req.resend || !req.sent) continue;
      this.byRef.delete(ref);
      req.reject(new Error(`the connection dropped before the ${req.frame.type} was answered; it may have been done`));
    }
  }

  rejectAll(error) {
    for (const req of this.byRef.values()) req.reject(error);
    this.byRef.clear();
  }
}
