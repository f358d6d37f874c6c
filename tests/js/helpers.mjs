// Shared by the tests in this folder: the cluster's address from the environment, and waits
// with deadlines (never fixed sleeps).
import WebSocket from "ws";

import { ChatClient, randomId } from "../../chat/static/chatcluster/client.js";

const env = process.env;

/** Set by tests/chat/test_client_js.py; without them the cluster tests skip. */
export const cluster = {
  host: env.CHAT_HOST ?? "127.0.0.1",
  port: Number(env.CHAT_PORT ?? 0), // the balancer
  nodePorts: (env.CHAT_NODE_PORTS ?? "").split(",").filter(Boolean).map(Number),
  tokens: JSON.parse(env.CHAT_TOKENS ?? "{}"), // username -> token
  passwordUser: env.CHAT_PASSWORD_USER ?? "", // "username:password", for POST /api/token
  cookie: env.CHAT_SESSION_COOKIE ?? "", // a logged-in session's Cookie header, as the page has it
};

export const skipCluster =
  cluster.port && cluster.nodePorts.length >= 2 && Object.keys(cluster.tokens).length
    ? false
    : "set CHAT_PORT, CHAT_NODE_PORTS (two or more) and CHAT_TOKENS, as tests/chat/test_client_js.py does";

export function newRoom() {
  return `js-${randomId().slice(0, 10)}`;
}

export function tokenUrl(user, port) {
  const token = cluster.tokens[user];
  if (!token) throw new Error(`no token for ${user} in CHAT_TOKENS`);
  return `ws://${cluster.host}:${port}/ws/?token=${encodeURIComponent(token)}`;
}

/** A fresh token from POST /api/token (through the balancer), as a long-running bot gets one. */
export async function fetchToken() {
  const [username, password] = cluster.passwordUser.split(":");
  const answer = await fetch(`http://${cluster.host}:${cluster.port}/api/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (answer.status !== 200) throw new Error(`POST /api/token answered ${answer.status}`);
  return (await answer.json()).token;
}

/** A ws WebSocket that keeps every frame it sends and receives (and may send an Origin). */
export function recordingSocket({ origin } = {}) {
  const sent = [];
  const received = [];
  class Recording extends WebSocket {
    constructor(url) {
      super(url, origin ? { origin } : {});
      this.on("message", (data, isBinary) => received.push(isBinary ? data : JSON.parse(data.toString())));
    }

    send(data) {
      sent.push(JSON.parse(data));
      super.send(data);
    }
  }
  return { WebSocketImpl: Recording, sent, received };
}

/** A client with a recording socket, closed when the test ends; `log` holds its events. */
export function makeClient(t, { url, origin } = {}) {
  const rec = recordingSocket({ origin });
  const client = new ChatClient({ url, WebSocketImpl: rec.WebSocketImpl });
  const log = { states: [], messages: [], publishes: [], errors: [] };
  client.addEventListener("state", ({ detail }) => log.states.push(detail));
  client.addEventListener("message", ({ detail }) => log.messages.push(detail));
  client.addEventListener("publish", ({ detail }) => log.publishes.push(detail));
  client.addEventListener("error", ({ detail }) => log.errors.push(detail));
  t.after(() => client.close());
  return { client, log, sent: rec.sent, received: rec.received };
}

/** The detail of the next `type` event that passes `test`. */
export function nextEvent(client, type, test = () => true, timeout = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.removeEventListener(type, listener);
      reject(new Error(`no matching "${type}" event within ${timeout} ms`));
    }, timeout);
    const listener = ({ detail }) => {
      if (!test(detail)) return;
      clearTimeout(timer);
      client.removeEventListener(type, listener);
      resolve(detail);
    };
    client.addEventListener(type, listener);
  });
}

/** Wait until `condition()` holds, checking every 20 ms, up to a deadline. */
export async function eventually(condition, what, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

export function seqsOf(log, room) {
  return log.messages.filter((m) => m.room === room).map((m) => m.seq);
}

export function range(from, to) {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
