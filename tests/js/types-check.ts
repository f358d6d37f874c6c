// Compile-only (never run): chat/static/chatcluster/client.d.ts against Node-style usage with the ws
// package. `tsc -p tests/js` checks it with --strict (tests/chat/test_client_js.py runs it).
import WebSocket from "ws";

import {
  ChatClient,
  STATES,
  backoffDelay,
  randomId,
  type AckFrame,
  type ConnectionState,
  type ErrorFrame,
  type HistoryMessage,
  type PublishDetail,
  type RequestError,
  type SeqFrame,
  type ServerFrame,
  type ClientFrame,
  type WebSocketConstructor,
} from "../../chat/static/chatcluster/client.js";

const token = (): Promise<string> => Promise.resolve("t");

// url: a string, a URL, or a function (sync or async) called per connect.
const a = new ChatClient({ url: "ws://127.0.0.1:8001/ws/?token=t", WebSocketImpl: WebSocket });
const b = new ChatClient({ url: async () => `ws://127.0.0.1:8001/ws/?token=${await token()}`, WebSocketImpl: WebSocket });
const c = new ChatClient({ url: () => new URL("ws://127.0.0.1:8001/ws/"), WebSocketImpl: WebSocket });

// An Origin header through a subclass of ws' WebSocket.
class WithOrigin extends WebSocket {
  constructor(url: string | URL) {
    super(url, { origin: "http://127.0.0.1:8000" });
  }
}
const impl: WebSocketConstructor = WithOrigin;
const d = new ChatClient({ url: "ws://127.0.0.1:8000/ws/?token=t", WebSocketImpl: impl });

// @ts-expect-error: url must be a string, a URL or a function
new ChatClient({ url: 8000, WebSocketImpl: WebSocket });
// @ts-expect-error: not a WebSocket constructor
new ChatClient({ url: "ws://x/ws/", WebSocketImpl: Object });

a.addEventListener("state", (ev) => {
  const state: ConnectionState = ev.detail.state;
  const code: number | undefined = ev.detail.code;
  const retryAt: number | undefined = ev.detail.retryAt;
  console.log(state, code, retryAt, ev.detail.error);
});
a.addEventListener("message", (ev) => {
  const seq: number = ev.detail.seq;
  const line: string = `${ev.detail.ts} ${ev.detail.user}: ${ev.detail.body} in ${ev.detail.room}`;
  // @ts-expect-error: a message has no `text`
  console.log(seq, line, ev.detail.text);
});
a.addEventListener("edit", ({ detail }) => console.log(detail.seq, detail.target, detail.user, detail.body, detail.ts));
a.addEventListener("delete", ({ detail }) => console.log(detail.seq, detail.target, detail.user, detail.ts));
a.addEventListener("react", ({ detail }) => {
  const on: boolean = detail.on;
  // @ts-expect-error: a react has no body
  console.log(detail.seq, detail.target, detail.emoji, on, detail.body);
});
a.addEventListener("message", ({ detail }) => console.log(detail.deleted === true, detail.edited ?? "never edited"));
a.addEventListener("subscribed", ({ detail }) => console.log(detail.room, detail.seq, detail.fresh === true));
a.addEventListener("reset", ({ detail }) => console.log(detail.room, detail.seq));
a.addEventListener("presence", ({ detail }) => console.log(detail.users.join(), detail.joined.length, detail.left.length));
a.addEventListener("typing", ({ detail }) => console.log(`${detail.user} types in ${detail.room}`));
a.addEventListener("publish", ({ detail }) => {
  const p: PublishDetail = detail;
  if (p.status === "failed") console.log(p.error?.code, p.error?.detail);
  if (p.status === "done") console.log(p.seq ?? 0, p.key, p.ref, p.body);
  // @ts-expect-error: not a publish status
  if (p.status === "sent") console.log("never");
});
a.addEventListener("room-error", ({ detail }) => console.log(detail.room, detail.code, detail.detail));
a.addEventListener("error", ({ detail }) => {
  const frame: ErrorFrame = detail;
  console.log(frame.code, frame.detail, frame.ref, frame.retry_after, frame.room);
});
a.addEventListener("unauthorized", (ev) => console.log(ev.type));
a.addEventListener("something-else", (ev: Event) => console.log(ev.type));
a.removeEventListener("message", null);

a.connect();
a.subscribe("general");
const ref: string = a.publish("general", "hello");
a.retry(ref);
a.discard(ref);
a.typing("general");
const last: number | null = a.lastSeq("general");
const users: string[] = a.presence("general");
const state: ConnectionState = a.state;
const pending: PublishDetail | undefined = a.pending.get(ref);
a.reconnectNow();
a.unsubscribe("general");
a.close();
// @ts-expect-error: the state is the client's to set
a.state = "online";
a.ws?.close();

async function older(client: ChatClient): Promise<number[]> {
  const page: HistoryMessage[] = await client.history("general", 40, 10);
  const newest = await client.history("general");
  const again = await client.history("general", null);
  for (const m of page) {
    // @ts-expect-error: a deleted message has no body: check `deleted` first
    console.log(m.body.length);
    if (!m.deleted) console.log(m.body.length, m.edited ?? "", Object.keys(m.reactions));
  }
  return [...page, ...newest, ...again].map((m) => m.seq);
}

async function change(client: ChatClient): Promise<number> {
  const edited: AckFrame = await client.edit("general", 3, "fixed");
  const deleted = await client.deleteMessage("general", 3);
  const given = await client.react("general", 2, "👍");
  const taken = await client.react("general", 2, "👍", false);
  // @ts-expect-error: the target is a message's seq
  await client.react("general", "2", "👍");
  try {
    await client.edit("general", 2, "not mine");
  } catch (err) {
    const refused = err as RequestError;
    console.log(refused.code === "forbidden", refused.frame?.detail, refused.message);
  }
  return edited.seq + deleted.seq + given.seq + taken.seq;
}

function inOrder(frame: SeqFrame): string {
  switch (frame.type) {
    case "message":
      return frame.body;
    case "edit":
      return `${frame.target}: ${frame.body}`;
    case "delete":
      return String(frame.target);
    case "react":
      return `${frame.emoji} ${frame.on}`;
  }
}

function handle(frame: ServerFrame): string {
  switch (frame.type) {
    case "message":
    case "edit":
      return frame.body;
    case "react":
      return frame.emoji;
    case "subscribed":
      return `${frame.seq} ${frame.presence.length} ${frame.recovered ?? "-"}`;
    case "ack":
      return String(frame.seq);
    case "history":
      return frame.messages.map((m) => m.body).join();
    case "presence":
      return [...frame.joined, ...frame.left].join();
    case "error":
      return frame.code;
    default:
      return frame.type;
  }
}

const frames: ClientFrame[] = [
  { type: "subscribe", room: "general", since: 3, ref: "1" },
  { type: "edit", room: "general", target: 3, body: "fixed" },
  { type: "delete", room: "general", target: 3, ref: "2" },
  { type: "react", room: "general", target: 3, emoji: "👍", on: false },
  { type: "publish", room: "general", body: "hi", key: randomId() },
  { type: "history", room: "general", before: 10, limit: 5 },
  { type: "ping" },
];

const delay: number = backoffDelay(3, Math.random) + backoffDelay(0);
const first: "connecting" = STATES[0];
console.log(b, c, d, last, users, state, pending, older, change, inOrder, handle, frames, delay, first);
