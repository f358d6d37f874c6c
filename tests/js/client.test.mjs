// client.js in Node (ws as WebSocketImpl, ?token= auth) against a real cluster: the address and
// tokens come from the environment (see helpers.mjs); tests/chat/test_client_js.py starts one.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import WebSocket from "ws";

import { ChatClient } from "../../chat/static/chatcluster/client.js";

import {
  cluster,
  deferred,
  eventually,
  fetchToken,
  makeClient,
  newRoom,
  nextEvent,
  range,
  seqsOf,
  skipCluster,
  tokenUrl,
} from "./helpers.mjs";

const [NODE_A, NODE_B] = cluster.nodePorts;

describe("ChatClient against the cluster", { skip: skipCluster, timeout: 60_000 }, () => {
  test("a token socket without Origin: subscribe, publish -> ack with seq, delivered in order on another node", async (t) => {
    const room = newRoom();
    const alice = makeClient(t, { url: tokenUrl("js_alice", NODE_A) });
    const bob = makeClient(t, { url: tokenUrl("js_bob", NODE_B) });
    alice.client.connect();
    bob.client.connect();
    const subscribed = [alice, bob].map(({ client }) => nextEvent(client, "subscribed", (d) => d.room === room));
    alice.client.subscribe(room);
    bob.client.subscribe(room);
    for (const s of await Promise.all(subscribed)) assert.deepEqual(s, { room, seq: 0, fresh: true });
    assert.deepEqual(alice.log.states.map((s) => s.state), ["connecting", "online"]);
    // Presence is cluster-wide: each sees both users, though they are on different nodes.
    await eventually(() => [alice, bob].every(({ client }) => client.presence(room).join() === "js_alice,js_bob"), "presence");

    const bodies = range(1, 8).map((k) => `hello ${k} from Node`);
    const refs = bodies.map((body) => alice.client.publish(room, body));
    await eventually(() => bob.client.lastSeq(room) === 8 && alice.client.pending.size === 0, "8 messages on both");

    // Every publish got an ack with its seq, in the order written.
    const acks = alice.received.filter((f) => f.type === "ack");
    assert.deepEqual(acks.map((f) => [f.ref, f.seq]), refs.map((ref, i) => [ref, i + 1]));
    assert.ok(acks.every((f) => f.room === room));
    const done = alice.log.publishes.filter((p) => p.status === "done");
    assert.deepEqual(done.map((p) => [p.ref, p.seq, p.body]), refs.map((ref, i) => [ref, i + 1, bodies[i]]));

    // Bob, on the other node, gets each message once, in seq order, with its author.
    assert.deepEqual(seqsOf(bob.log, room), range(1, 8));
    assert.deepEqual(bob.log.messages.map((m) => m.body), bodies);
    assert.ok(bob.log.messages.every((m) => m.user === "js_alice" && m.type === "message" && !Number.isNaN(Date.parse(m.ts))));
    assert.deepEqual(seqsOf(alice.log, room), range(1, 8));
    assert.deepEqual(alice.log.errors, []);
  });

  test("an allowed Origin header (a WebSocketImpl subclass) connects; a foreign one is closed 4403 and the client stops", async (t) => {
    const room = newRoom();
    const good = makeClient(t, { url: tokenUrl("js_erin", cluster.port), origin: `http://${cluster.host}:${cluster.port}` });
    good.client.connect();
    good.client.subscribe(room);
    assert.equal((await nextEvent(good.client, "subscribed")).room, room);

    const foreign = makeClient(t, { url: tokenUrl("js_frank", NODE_A), origin: "http://evil.example" });
    const offline = nextEvent(foreign.client, "state", (d) => d.state === "offline");
    foreign.client.connect();
    foreign.client.subscribe(room);
    assert.deepEqual(await offline, { state: "offline", code: 4403 });
    assert.equal(foreign.client.stopped, true);
    assert.equal(foreign.client.ws, null);
    assert.equal(foreign.received.length, 0);
  });

  test("a bad token is closed 4401: the client emits unauthorized and stops", async (t) => {
    const client = makeClient(t, { url: `ws://${cluster.host}:${NODE_A}/ws/?token=not-a-token` });
    const unauthorized = nextEvent(client.client, "unauthorized");
    client.client.connect();
    client.client.subscribe(newRoom());
    await unauthorized;
    assert.deepEqual(client.log.states.at(-1), { state: "offline", code: 4401 });
    assert.equal(client.client.stopped, true);
    assert.equal(client.received.length, 0);
  });

  test("an async url() gets a fresh token per connect; after the socket dies the client resumes on another node with since, once each", async (t) => {
    const room = newRoom();
    const calls = [];
    let gate = null;
    const url = async () => {
      const port = cluster.nodePorts[calls.length % cluster.nodePorts.length];
      calls.push(port);
      if (gate) await gate.promise;
      return `ws://${cluster.host}:${port}/ws/?token=${encodeURIComponent(await fetchToken())}`;
    };
    const carol = makeClient(t, { url });
    const dave = makeClient(t, { url: tokenUrl("js_dave", NODE_B) });
    carol.client.connect();
    dave.client.connect();
    // A first subscribe starts from the room's seq when answered (older ones are history): wait for it.
    const subscribed = [carol, dave].map(({ client }) => nextEvent(client, "subscribed", (d) => d.room === room));
    carol.client.subscribe(room);
    dave.client.subscribe(room);
    await Promise.all(subscribed);
    for (const k of range(1, 3)) dave.client.publish(room, `before ${k}`);
    await eventually(() => carol.client.lastSeq(room) === 3, "carol has 1..3");

    // The socket dies under the client (no close frame): it reconnects by itself after a
    // backoff, calling url() again, which this test holds until more messages are stored.
    gate = deferred();
    const sentBefore = carol.sent.length;
    const reconnecting = nextEvent(carol.client, "state", (d) => d.state === "reconnecting");
    carol.client.ws.terminate();
    assert.equal((await reconnecting).code, 1006);
    await eventually(() => calls.length === 2, "the second url() call");
    const queued = carol.client.publish(room, "written while away"); // waits: no socket yet
    for (const k of range(4, 6)) dave.client.publish(room, `missed ${k}`);
    await eventually(() => dave.client.lastSeq(room) === 6, "dave has 4..6");
    assert.equal(carol.client.lastSeq(room), 3);
    gate.resolve();

    await eventually(() => carol.client.lastSeq(room) === 7 && dave.client.lastSeq(room) === 7, "both at seq 7");
    await eventually(() => carol.client.pending.size === 0, "carol's publish settled");
    assert.deepEqual(calls, [NODE_A, NODE_B]);
    assert.deepEqual(seqsOf(carol.log, room), range(1, 7));
    assert.deepEqual(seqsOf(dave.log, room), range(1, 7));
    assert.deepEqual(
      carol.log.messages.map((m) => m.body),
      ["before 1", "before 2", "before 3", "missed 4", "missed 5", "missed 6", "written while away"],
    );
    // The first frame on the new socket asked for what followed seq 3; the server replayed it all.
    const resubscribe = carol.sent[sentBefore];
    assert.deepEqual([resubscribe.type, resubscribe.room, resubscribe.since], ["subscribe", room, 3]);
    const resubscribed = carol.received.find((f) => f.type === "subscribed" && f.ref === resubscribe.ref);
    assert.equal(resubscribed.recovered, true);
    // The publish made offline went out exactly once, after the resubscribe.
    const publishes = carol.sent.filter((f) => f.type === "publish");
    assert.equal(publishes.length, 1);
    assert.ok(carol.sent.indexOf(publishes[0]) > sentBefore);
    assert.equal(carol.log.publishes.find((p) => p.ref === queued && p.status === "done").seq, 7);
    const states = carol.log.states.map((s) => s.state);
    assert.deepEqual(states.slice(states.indexOf("reconnecting")), ["reconnecting", "reconnecting", "catching-up", "online"]);
  });

  test("reconnectNow() skips the backoff wait", async (t) => {
    const room = newRoom();
    const gina = makeClient(t, { url: tokenUrl("js_gina", NODE_A) });
    gina.client.connect();
    gina.client.subscribe(room);
    await nextEvent(gina.client, "subscribed");
    // Make the next backoff its longest (10 s): only reconnectNow() brings the socket back sooner.
    gina.client.attempt = 10;
    const random = Math.random;
    Math.random = () => 1;
    let waiting;
    try {
      const reconnecting = nextEvent(gina.client, "state", (d) => d.state === "reconnecting");
      gina.client.ws.terminate();
      waiting = await reconnecting;
    } finally {
      Math.random = random;
    }
    assert.ok(waiting.retryAt - Date.now() > 8_000, "the backoff is ~10 s");
    const online = nextEvent(gina.client, "state", (d) => d.state === "online", 5_000);
    gina.client.reconnectNow();
    await online;
    assert.ok(Date.now() < waiting.retryAt);
    assert.equal(gina.client.lastSeq(room), 0);
  });

  test("history(): messages oldest first, paged with before and limit; a missing room rejects with not_found", async (t) => {
    const room = newRoom();
    const hank = makeClient(t, { url: tokenUrl("js_hank", NODE_B) });
    hank.client.connect();
    // Publishing needs no subscription: each is done at its ack.
    for (const k of range(1, 5)) hank.client.publish(room, `h${k}`);
    await eventually(() => hank.log.publishes.filter((p) => p.status === "done").length === 5, "5 acks");
    const all = await hank.client.history(room);
    assert.deepEqual(all.map((m) => [m.seq, m.body, m.user, m.room]), range(1, 5).map((k) => [k, `h${k}`, "js_hank", room]));
    assert.deepEqual((await hank.client.history(room, 4, 2)).map((m) => m.seq), [2, 3]);
    assert.deepEqual((await hank.client.history(room, null, 2)).map((m) => m.seq), [4, 5]);
    await assert.rejects(hank.client.history(newRoom()), { code: "not_found" });
  });

  test("the page's way: new ChatClient() with no options, from location and a global WebSocket (session cookie)", async (t) => {
    // What tests/browser/test_client.py does in Chromium, with a browser's globals faked.
    if (!cluster.cookie) return t.skip("set CHAT_SESSION_COOKIE");
    const room = newRoom();
    const origin = `http://${cluster.host}:${NODE_B}`;
    class PageSocket extends WebSocket {
      constructor(url) {
        super(url, { origin, headers: { Cookie: cluster.cookie } });
      }
    }
    const saved = { location: globalThis.location, WebSocket: globalThis.WebSocket };
    globalThis.location = new URL(`${origin}/rooms/${room}/`);
    globalThis.WebSocket = PageSocket;
    let client;
    try {
      client = new ChatClient();
    } finally {
      Object.assign(globalThis, saved);
    }
    t.after(() => client.close());
    assert.equal(client.url, `ws://${cluster.host}:${NODE_B}/ws/`);
    const seqs = [];
    const states = [];
    client.addEventListener("message", ({ detail }) => seqs.push(detail.seq));
    client.addEventListener("state", ({ detail }) => states.push(detail.state));
    client.connect();
    client.subscribe(room);
    await nextEvent(client, "subscribed");
    client.publish(room, "one");
    client.publish(room, "two");
    await eventually(() => client.lastSeq(room) === 2, "seq 2");
    // A replayed frame is dropped by seq, not shown twice.
    client._onFrame(JSON.stringify({ type: "message", room, seq: 1, user: "x", body: "one", ts: new Date().toISOString() }));
    // The socket drops; a publish made meanwhile waits, then goes out once after the resubscribe.
    client.ws.close();
    client.publish(room, "three");
    await eventually(() => client.lastSeq(room) === 3, "seq 3");
    client.close();
    assert.deepEqual(seqs, [1, 2, 3]);
    assert.deepEqual(states.slice(0, 2), ["connecting", "online"]);
    assert.ok(states.includes("reconnecting"));
    assert.deepEqual(states.slice(-2), ["online", "offline"]);
  });

  test("a url() that rejects counts as a failed connect: reported, then retried", async (t) => {
    let calls = 0;
    const url = async () => {
      if (++calls === 1) throw new Error("no token yet");
      return tokenUrl("js_ivy", NODE_A);
    };
    const ivy = makeClient(t, { url });
    const online = nextEvent(ivy.client, "state", (d) => d.state === "online");
    ivy.client.connect();
    ivy.client.connect(); // connecting already: no second socket
    await online;
    assert.equal(calls, 2);
    const failed = ivy.log.states.find((s) => s.state === "reconnecting");
    assert.equal(failed.code, 1006);
    assert.equal(failed.error.message, "no token yet");
  });
});
