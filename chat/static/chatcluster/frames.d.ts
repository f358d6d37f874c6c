// Types of the /ws/ protocol's frames (docs/protocol.md), for client.d.ts, which re-exports
// them all: import them from "@chatcluster/client". Hand-written, no build step.

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

/** Who reacted with each emoji, in the order they reacted. */
export type Reactions = Record<string, string[]>;

interface StoredMessage {
  room: RoomSlug;
  /**
   * 1, 2, 3 ... per room, with no gaps. Messages and the changes to them (edit, delete,
   * react) count from the same seq.
   */
  seq: number;
  user: string;
  /** ISO-8601 in UTC, with an offset. */
  ts: string;
}

/** A message as `history` returns it, in its final state: a plain object, no `type`. */
export interface LiveHistoryMessage extends StoredMessage {
  /** The latest body (after any edit). */
  body: string;
  /** When it was last edited (ISO-8601); absent when never edited. */
  edited?: string;
  deleted?: undefined;
  reactions: Reactions;
}

/** A deleted message as `history` returns it: no `body`. */
export interface DeletedHistoryMessage extends StoredMessage {
  deleted: true;
  body?: undefined;
  edited?: undefined;
  /** Empty: a deleted message keeps no reactions. */
  reactions: Reactions;
}

/** A stored message as `history` returns it; check `deleted` before reading `body`. */
export type HistoryMessage = LiveHistoryMessage | DeletedHistoryMessage;

/**
 * `message`: a message in a subscribed room. Live, as written; in a replay (`subscribe` with
 * `since`, or a gap repair), in its current state: the latest body with `edited`, or
 * `deleted: true` with `body: ""`. Its changes follow as their own frames.
 */
export interface MessageFrame extends StoredMessage {
  type: "message";
  body: string;
  /** In a replay: when it was last edited (ISO-8601). */
  edited?: string;
  /** In a replay: it was deleted (and `body` is ""). */
  deleted?: boolean;
}

/** `edit`: `user` changed the body of message `target`; an event of the room's seq stream. */
export interface EditFrame {
  type: "edit";
  room: RoomSlug;
  seq: number;
  /** The seq of the message edited. */
  target: number;
  user: string;
  body: string;
  ts: string;
}

/** `delete`: `user` (its author, a moderator or staff) deleted message `target`. */
export interface DeleteFrame {
  type: "delete";
  room: RoomSlug;
  seq: number;
  target: number;
  user: string;
  ts: string;
}

/** `react`: `user` gave (`on`) or took back the reaction `emoji` to message `target`. */
export interface ReactFrame {
  type: "react";
  room: RoomSlug;
  seq: number;
  target: number;
  user: string;
  /** One emoji grapheme. */
  emoji: string;
  on: boolean;
  ts: string;
}

/** The events of a room's seq stream: each arrives once, in seq order, also across reconnects. */
export type SeqFrame = MessageFrame | EditFrame | DeleteFrame | ReactFrame;

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

/** `ack`: the publish (or edit, delete, react) is stored with this seq. */
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
  | EditFrame
  | DeleteFrame
  | ReactFrame
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

export interface EditRequest {
  type: "edit";
  room: RoomSlug;
  /** The seq of your message (not of a change); only its author may edit it. */
  target: number;
  body: string;
  ref?: string;
}

export interface DeleteRequest {
  type: "delete";
  room: RoomSlug;
  /** The seq of a message: yours, or anyone's for the room's owner, moderators and staff. */
  target: number;
  ref?: string;
}

export interface ReactRequest {
  type: "react";
  room: RoomSlug;
  target: number;
  /** One emoji grapheme, at most 16 code points. */
  emoji: string;
  /** Give (default) or take back. */
  on?: boolean;
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
  | EditRequest
  | DeleteRequest
  | ReactRequest
  | PingRequest;
