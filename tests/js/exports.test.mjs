// client.js in Node with no server: what it exports, and clear errors for what Node lacks.
import assert from "node:assert/strict";
import { test } from "node:test";

import WebSocket from "ws";

import { ChatClient, STATES, backoffDelay, randomId } from "../../chat/static/chatcluster/client.js";

test("the module exports ChatClient, STATES, backoffDelay and randomId", () => {
  assert.deepEqual(STATES, ["connecting", "online", "reconnecting", "catching-up", "offline"]);
  assert.ok(new ChatClient({ url: "ws://127.0.0.1:1/ws/", WebSocketImpl: WebSocket }) instanceof EventTarget);
  assert.match(randomId(), /^[0-9a-f]{24}$/);
  assert.notEqual(randomId(), randomId());
  assert.equal(backoffDelay(0, () => 1), 500);
  assert.equal(backoffDelay(3, () => 0.5), 2000);
  assert.equal(backoffDelay(30, () => 1), 10_000); // capped
  assert.equal(backoffDelay(5, () => 0), 0);
});

test("without `url` outside a browser, the constructor says to pass one", () => {
  assert.equal(globalThis.location, undefined);
  assert.throws(() => new ChatClient({ WebSocketImpl: WebSocket }), {
    name: "TypeError",
    message: /pass `url`.*\?token=/,
  });
});

test("without a WebSocket implementation, the constructor says to pass WebSocketImpl", (t) => {
  if (globalThis.WebSocket) return t.skip("this Node has a global WebSocket");
  assert.throws(() => new ChatClient({ url: "ws://127.0.0.1:1/ws/" }), {
    name: "TypeError",
    message: /pass WebSocketImpl/,
  });
});

test("constructing connects nothing; a refused connect is retried with backoff until close()", async (t) => {
  const client = new ChatClient({ url: "ws://127.0.0.1:1/ws/", WebSocketImpl: WebSocket });
  t.after(() => client.close());
  assert.equal(client.ws, null);
  assert.equal(client.state, "connecting");
  const retrying = new Promise((resolve) =>
    client.addEventListener("state", ({ detail }) => detail.state === "reconnecting" && resolve(detail)),
  );
  client.connect(); // port 1: refused; the ws package's error event must not crash the process
  const detail = await retrying;
  assert.equal(detail.code, 1006);
  assert.ok(detail.retryAt >= Date.now() - 1000);
  client.close();
  assert.equal(client.state, "offline");
  assert.equal(client.ws, null);
  assert.equal(client.stopped, true);
});
