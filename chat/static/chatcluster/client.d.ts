// Types for client.js (@chatcluster/client): the /ws/ protocol of docs/protocol.md.
// Hand-written, no build step: keep them in step with client.js (tests/js/types-check.ts
// checks them with `tsc --strict`).

// --- frames ------------------------------------------------------------------------------

/** A room's name: 1 to 64 characters of `a-z 0-9 - _`. */
export type RoomSlug = string;

/** The `code` of an `error` frame. */
export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "too_large"
  | "rate_limited"
  | "unavailable"
  | "internal";

/** A stored message as `history` returns it: a plain object, no `type`. */
export interface HistoryMessage {
  room: RoomSlug;
  /** 1, 2, 3 ... per room, with no gaps. */
  seq: number;
  user: string;
  body: string;
  /** ISO-8601 in UTC, with an offset. */
  ts: string;
}

/** `message`: a message in a subscribed room (live or replayed). */
export interface MessageFrame extends HistoryMessage {
  type: "message";
}

/** `subscribed`: the answer to `subscribe`; with `since`, every replayed message came before it. */
export interface SubscribedFrame {
  type: "subscribed";
  room: RoomSlug;
  /** The room's last seq as the node knows it. */
  seq: number;
  /** The users present, sorted; you are among them. */
  presence: string[];
  /** Only when the subscribe carried `since`: false when more were missed than the server replays. */
  recovered?: boolean;
  ref?: string;
}

export interface UnsubscribedFrame {
  type: "unsubscribed";
  room: RoomSlug;
  ref?: string;
}

/** `ack`: the publish is stored with this seq. */
export interface AckFrame {
  type: "ack";
  room: RoomSlug;
  seq: number;
  ref?: string;
}

/** `history`: messages oldest first, at most `limit` (capped at 100). */
export interface HistoryFrame {
  type: "history";
  room: RoomSlug;
  messages: HistoryMessage[];
  ref?: string;
}

/** `presence`: users that came and went, counted per user across all nodes. */
export interface PresenceFrame {
  type: "presence";
  room: RoomSlug;
  joined: string[];
  left: string[];
}

/** `typing` from the server: someone else is typing. */
export interface TypingFrame {
  type: "typing";
  room: RoomSlug;
  user: string;
}

export interface PongFrame {
  type: "pong";
  ref?: string;
}

/** `error`: a frame failed; the socket stays open unless a close code follows. */
export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  detail: string;
  /** The `ref` of the frame it answers; absent on an unasked `forbidden` (removed from `room`). */
  ref?: string;
  /** Seconds, with `rate_limited`. */
  retry_after?: number;
  /** With an unasked `forbidden`: the room whose subscription ended. */
  room?: RoomSlug;
}

/** Any frame the server sends. */
export type ServerFrame =
  | MessageFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | AckFrame
  | HistoryFrame
  | PresenceFrame
  | TypingFrame
  | PongFrame
  | ErrorFrame;

export interface SubscribeRequest {
  type: "subscribe";
  room: RoomSlug;
  /** Replay every message with a larger seq first (integer >= 0, at most the room's last seq). */
  since?: number;
  ref?: string;
}

export interface UnsubscribeRequest {
  type: "unsubscribe";
  room: RoomSlug;
  ref?: string;
}

export interface PublishRequest {
  type: "publish";
  room: RoomSlug;
  body: string;
  /** Idempotency key (1 to 64 characters): a repeat gets the original seq, nothing is stored twice. */
  key?: string;
  ref?: string;
}

export interface TypingRequest {
  type: "typing";
  room: RoomSlug;
  ref?: string;
}

export interface HistoryRequest {
  type: "history";
  room: RoomSlug;
  /** Messages with a smaller seq (the newest when absent). */
  before?: number;
  /** At least 1, default 50, capped at 100. */
  limit?: number;
  ref?: string;
}

export interface PingRequest {
  type: "ping";
  ref?: string;
}

/** Any frame a client sends (`ref`: any string of at most 64 characters, echoed by the answer). */
export type ClientFrame =
  | SubscribeRequest
  | UnsubscribeRequest
  | PublishRequest
  | TypingRequest
  | HistoryRequest
  | PingRequest;

// --- the client ----------------------------------------------------------------------------

/** Every state the client reports, in its usual order. */
export declare const STATES: readonly ["connecting", "online", "reconnecting", "catching-up", "offline"];

export type ConnectionState = (typeof STATES)[number];

/** Full-jitter backoff in ms: random() x min(10 s, 500 ms x 2^attempt), rounded. */
export declare function backoffDelay(attempt: number, random?: () => number): number;

/** 24 random hex characters (crypto.getRandomValues). */
export declare function randomId(): string;

/**
 * What the client needs of a socket: the browser's WebSocket, or `WebSocket` from the
 * `ws` package in Node 20 (which has no global WebSocket).
 */
export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  onopen: ((event: any) => void) | null;
  /** `event.data` is the text of a frame. */
  onmessage: ((event: any) => void) | null;
  /** `event.code` is the close code (1006 for a dropped connection). */
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/**
 * Called as `new WebSocketImpl(url)`. To set an `Origin` header (or other options) in Node,
 * pass a subclass: `class extends WebSocket { constructor(url) { super(url, { origin }) } }`.
 * A token-authenticated socket may omit Origin; a foreign one is refused (close 4403).
 */
export type WebSocketConstructor = new (url: string | URL) => WebSocketLike;

/**
 * Where to connect: `ws[s]://host[:port]/ws/`, with `?token=...` outside a browser. A
 * function (sync or async) is called before every connect and reconnect, so it can put a
 * fresh token in each time (tokens expire and are checked only at connect); if it throws
 * or rejects, that connect counts as failed and is retried with backoff.
 */
export type UrlSource = string | URL | (() => string | URL | PromiseLike<string | URL>);

export interface ChatClientOptions {
  /**
   * Required outside a browser. In a browser the default is this page's host:
   * `ws[s]://${location.host}/ws/` (authenticated by the session cookie).
   */
  url?: UrlSource;
  /** Default: the global `WebSocket`; required in Node 20 (use the `ws` package). */
  WebSocketImpl?: WebSocketConstructor;
}

/** `state`: the connection changed state. */
export interface StateDetail {
  state: ConnectionState;
  /**
   * The close code, on `reconnecting` after a close, and on `offline` after 4401 (not
   * authenticated) or 4403 (origin refused), where the client stops retrying.
   */
  code?: number;
  /** With `reconnecting` after a close: when the next attempt starts (ms since the epoch). */
  retryAt?: number;
  /** With `reconnecting` when the `url` function threw or rejected (or the socket could not be made). */
  error?: unknown;
}

/** `subscribed`: a (re)subscribe was answered; `fresh` on the room's first one. */
export interface SubscribedDetail {
  room: RoomSlug;
  seq: number;
  fresh: boolean;
}

/** `reset`: the room's view must be reloaded (too much was missed, or the server's data was reset). */
export interface ResetDetail {
  room: RoomSlug;
  seq: number;
}

/** `presence`: `users` is everyone present now, sorted; `joined`/`left` what changed. */
export interface PresenceDetail {
  room: RoomSlug;
  users: string[];
  joined: string[];
  left: string[];
}

export interface TypingDetail {
  room: RoomSlug;
  user: string;
}

/**
 * A publish's life: `sending` (queued, or sent and awaiting `ack`; re-sent with the same
 * key after a reconnect), `acked` (stored as `seq`, its `message` not seen yet), `done`
 * (its seq was delivered, or it was acked in a room not subscribed), `failed` (refused:
 * `retry` or `discard` it), `discarded`.
 */
export type PublishStatus = "sending" | "acked" | "done" | "failed" | "discarded";

/** `publish`: a snapshot of one publish whenever its status changes. */
export interface PublishDetail {
  /** What `publish()` returned. */
  ref: string;
  room: RoomSlug;
  body: string;
  /** The idempotency key the publish is (re)sent with. */
  key: string;
  status: PublishStatus;
  seq: number | null;
  error: { code: ErrorCode; detail: string } | null;
}

/** `room-error`: the room was dropped (a refused subscribe, or removed from a private room). */
export interface RoomErrorDetail {
  room: RoomSlug;
  code: ErrorCode;
  detail: string;
}

/** Every event ChatClient dispatches: a CustomEvent with its payload in `detail`. */
export interface ChatClientEventMap {
  state: CustomEvent<StateDetail>;
  /** Each message exactly once, in seq order per room (repeats dropped, gaps repaired). */
  message: CustomEvent<MessageFrame>;
  subscribed: CustomEvent<SubscribedDetail>;
  reset: CustomEvent<ResetDetail>;
  presence: CustomEvent<PresenceDetail>;
  typing: CustomEvent<TypingDetail>;
  publish: CustomEvent<PublishDetail>;
  "room-error": CustomEvent<RoomErrorDetail>;
  /** An `error` frame that answers nothing the client tracks (e.g. a rate-limited typing). */
  error: CustomEvent<ErrorFrame>;
  /** The socket was closed with 4401: log in again, or get a new token (the client stopped). */
  unauthorized: CustomEvent<Record<string, never>>;
}

export type ChatClientEventType = keyof ChatClientEventMap;

/** A listener for ChatClient events (declared here, so the types need neither lib "dom" nor @types/node). */
export type ChatClientListener<E extends Event> = ((this: ChatClient, event: E) => void) | { handleEvent(event: E): void };

/** addEventListener's options. */
export interface ListenerOptions {
  capture?: boolean;
  once?: boolean;
  passive?: boolean;
  signal?: AbortSignal;
}

/** Rejection of `history()`: the server's error code, or none when the client was closed. */
export interface HistoryError extends Error {
  code?: ErrorCode;
}

/**
 * One socket, many rooms. Per room it keeps the last contiguous seq, drops repeats, holds
 * back out-of-order messages until the gap is repaired, and re-subscribes with `since`
 * after every reconnect. Publishes stay pending, and are re-sent with the same key, until
 * acked. Construction opens nothing: call `connect()`.
 */
export declare class ChatClient extends EventTarget {
  /** @throws TypeError without `url` where there is no `location`, or with no WebSocket implementation. */
  constructor(options?: ChatClientOptions);

  url: UrlSource;
  WebSocketImpl: WebSocketConstructor;
  /** The current socket, null while disconnected. Read-only for callers. */
  readonly ws: WebSocketLike | null;
  readonly state: ConnectionState;
  /** True after `close()`, 4401 or 4403: the client does not reconnect on its own. */
  readonly stopped: boolean;
  /** Publishes not yet settled, by ref. */
  readonly pending: ReadonlyMap<string, PublishDetail>;

  /** Open the socket (after `close()`, too); reconnects on its own until `close()`. */
  connect(): void;
  /** Close the socket, stop reconnecting, reject pending `history()` calls; state `offline`. */
  close(): void;
  /** Skip the backoff wait and connect now (unless stopped or already connected). */
  reconnectNow(): void;

  /** Follow a room: its messages arrive as `message` events (once, in order). */
  subscribe(room: RoomSlug): void;
  unsubscribe(room: RoomSlug): void;
  /** The highest seq up to which every message of `room` was delivered; null before `subscribed`. */
  lastSeq(room: RoomSlug): number | null;
  /** The users present in `room`, sorted. */
  presence(room: RoomSlug): string[];

  /** Queue a message; returns its ref. Follow it with `publish` events. */
  publish(room: RoomSlug, body: string): string;
  /** Send a `failed` publish again. */
  retry(ref: string): void;
  /** Forget a pending publish (it gets status `discarded`). */
  discard(ref: string): void;

  /**
   * Messages of `room` with seq < `before` (the newest when null), oldest first, at most
   * `limit` (default 50, capped at 100 by the server). Sent again after a reconnect until
   * answered. Rejects with a HistoryError.
   */
  history(room: RoomSlug, before?: number | null, limit?: number): Promise<HistoryMessage[]>;
  /** Announce typing in a subscribed room (throttled to one frame every 3 s). */
  typing(room: RoomSlug): void;

  addEventListener<K extends ChatClientEventType>(
    type: K,
    listener: ChatClientListener<ChatClientEventMap[K]> | null,
    options?: boolean | ListenerOptions,
  ): void;
  addEventListener(type: string, listener: ChatClientListener<Event> | null, options?: boolean | ListenerOptions): void;
  removeEventListener<K extends ChatClientEventType>(
    type: K,
    listener: ChatClientListener<ChatClientEventMap[K]> | null,
    options?: boolean | { capture?: boolean },
  ): void;
  removeEventListener(type: string, listener: ChatClientListener<Event> | null, options?: boolean | { capture?: boolean }): void;
}
