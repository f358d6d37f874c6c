// Types for client.js (@chatcluster/client): the /ws/ protocol of docs/protocol.md.
// Hand-written, no build step: keep them in step with client.js (tests/js/types-check.ts
// checks them with `tsc --strict`). The frames' types are in frames.d.ts, exported from here.

import type {
  AckFrame,
  DeleteFrame,
  EditFrame,
  ErrorCode,
  ErrorFrame,
  HistoryMessage,
  MessageFrame,
  ReactFrame,
  RoomSlug,
} from "./frames.js";

export * from "./frames.js";


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
  /** While `sending` after a `rate_limited` or `unavailable` answer: when it goes again (ms since the epoch). */
  retryAt?: number;
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
  /**
   * Each message exactly once, in seq order per room (repeats dropped, gaps repaired), and
   * in that same order with the edit, delete and react events of the room.
   */
  message: CustomEvent<MessageFrame>;
  /** A message's body changed (once, in seq order with the room's messages). */
  edit: CustomEvent<EditFrame>;
  /** A message was deleted (once, in seq order with the room's messages). */
  delete: CustomEvent<DeleteFrame>;
  /** A reaction was given or taken back (once, in seq order with the room's messages). */
  react: CustomEvent<ReactFrame>;
  subscribed: CustomEvent<SubscribedDetail>;
  reset: CustomEvent<ResetDetail>;
  presence: CustomEvent<PresenceDetail>;
  typing: CustomEvent<TypingDetail>;
  publish: CustomEvent<PublishDetail>;
  "room-error": CustomEvent<RoomErrorDetail>;
  /** You were made a member of `room` (a DM someone began, an admin's add): list it. */
  added: CustomEvent<{ room: RoomSlug }>;
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

/**
 * Rejection of `history()`, `edit()`, `deleteMessage()` and `react()`: the server's error
 * code and its `error` frame (message: its `detail`); neither when the client was closed,
 * or when the socket dropped before an `edit()` was answered (it may have been stored).
 */
export interface RequestError extends Error {
  code?: ErrorCode;
  frame?: ErrorFrame;
}

export type HistoryError = RequestError;

/**
 * One socket, many rooms. Per room it keeps the last contiguous seq, drops repeats, holds
 * back out-of-order events (messages, edits, deletes, reacts) until the gap is repaired,
 * and re-subscribes with `since` after every reconnect. Publishes stay pending, and are
 * re-sent with the same key, until acked. Construction opens nothing: call `connect()`.
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
  /** Close the socket, stop reconnecting, reject pending `history()`, `edit()`, `deleteMessage()`, `react()`; state `offline`. */
  close(): void;
  /** Skip the backoff wait and connect now (unless stopped or already connected). */
  reconnectNow(): void;

  /** Follow a room: its messages and their changes arrive as `message`, `edit`, `delete`, `react` events (once, in order). */
  subscribe(room: RoomSlug): void;
  unsubscribe(room: RoomSlug): void;
  /** The highest seq up to which every event of `room` (message or change) was delivered; null before `subscribed`. */
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
   * answered. Rejects with a RequestError.
   */
  history(room: RoomSlug, before?: number | null, limit?: number): Promise<HistoryMessage[]>;
  /**
   * Change the body of your message `target` (a message's seq); resolves with the `ack`
   * (the edit's own seq). Sent once connected; rejects with a RequestError when refused
   * (`forbidden` for another's message, `not_found`, `rate_limited` ...), or with no code
   * when the socket dropped before the answer (it is not sent twice: it may have been stored).
   */
  edit(room: RoomSlug, target: number, body: string): Promise<AckFrame>;
  /**
   * Delete message `target` (yours, or any as the room's owner, a moderator or staff);
   * resolves with the `ack`. Sent again after a reconnect until answered (a repeat acks
   * the first delete's seq). Rejects with a RequestError.
   */
  deleteMessage(room: RoomSlug, target: number): Promise<AckFrame>;
  /**
   * Give (`on`, the default) or take back the reaction `emoji` (one emoji grapheme) to
   * message `target`; resolves with the `ack`. Sent again after a reconnect until answered
   * (asking for the state a reaction already has stores nothing and acks the seq that set
   * it). Rejects with a RequestError.
   */
  react(room: RoomSlug, target: number, emoji: string, on?: boolean): Promise<AckFrame>;
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
