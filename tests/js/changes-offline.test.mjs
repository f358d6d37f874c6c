// client.js against a scripted socket (no server): edit, delete and react events in the
// room's seq stream, and the requests that make them. A real cluster seldom shows a client
// a gap or drops a socket between a change and its ack; a script does it every time.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ChatClient } from "../../chat/static/chatcluster/client.js";

const ROOM = "r";
const TS = "2025-01-05T10:00:00+00:00";

/** A socket the test drives: `open()`, `receive(frame)`, `drop(code)`; `sent` holds what the client sent. */
function fakeSockets() {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
    }

    send(data) {
      this.sent.push(JSON.parse(data));
    }

    close() {
      this.readyState = 3;
    }

    open() {
      this.readyState = 1;
      this.onopen({});
    }

    receive(frame) {
      this.onmessage({ data: JSON.stringify(frame) });
    }

    drop(code = 1006) {
      this.readyState = 3;
      this.onclose({ code });
    }

    last(type) {
      return this.sent.filter((f) => f.type === type).at(-1);
    }
  }
  return { FakeSocket, sockets };
}

const message = (seq) => ({ type: "message", room: ROOM, seq, user: "ann", body: `m${seq}`, ts: TS });
const edit = (seq, target) => ({ type: "edit", room: ROOM, seq, target, user: "ann", body: `e${seq}`, ts: TS });
const del = (seq, target) => ({ type: "delete", room: ROOM, seq, target, user: "ann", ts: TS });
const react = (seq, target) => ({ type: "react", room: ROOM, seq, target, user: "bo", emoji: "👍", on: true, ts: TS });

/** A connected client subscribed to ROOM at `seq`; `events` logs every seq-stream event as [type, seq]. */
function connected(t, seq = 0) {
  const { FakeSocket, sockets } = fakeSockets();
  const client = new ChatClient({ url: "ws://fake/ws/", WebSocketImpl: FakeSocket });
  t.after(() => client.close());
  const events = [];
  for (const type of ["message", "edit", "delete", "react", "pin"]) {
    client.addEventListener(type, ({ detail }) => events.push([type, detail.seq]));
  }
  client.connect();
  sockets[0].open();
  client.subscribe(ROOM);
  const ws = sockets[0];
  ws.receive({ type: "subscribed", room: ROOM, seq, presence: ["ann"], ref: ws.last("subscribe").ref });
  return { client, sockets, events, ws };
}

describe("changes in the seq stream, scripted", () => {
  test("edit, delete and react are dispatched once, in seq order with messages; one past a gap waits for the replay", (t) => {
    const { client, events, ws } = connected(t, 2);
    ws.receive(message(3));
    ws.receive(react(5, 3)); // 4 was lost on the way
    ws.receive(del(6, 3));
    assert.deepEqual(events, [["message", 3]]);
    assert.equal(client.lastSeq(ROOM), 3);
    // The gap is repaired with a replay from the last seq delivered; the held frames wait for it.
    const repair = ws.last("subscribe");
    assert.equal(repair.since, 3);

    ws.receive(edit(4, 3));
    ws.receive(react(5, 3)); // the replay resends what the client already holds
    ws.receive(del(6, 3));
    ws.receive({ type: "subscribed", room: ROOM, seq: 6, presence: ["ann"], recovered: true, ref: repair.ref });
    ws.receive(edit(4, 3)); // late repeats are dropped by seq, whatever their type
    ws.receive(message(3));
    assert.deepEqual(events, [
      ["message", 3],
      ["edit", 4],
      ["react", 5],
      ["delete", 6],
    ]);
    assert.equal(client.lastSeq(ROOM), 6);
    assert.equal(ws.sent.filter((f) => f.type === "subscribe").length, 2, "no further repair once the gap closed");
  });

  test("a newer server's frame with a seq takes its place in the stream instead of leaving a gap", (t) => {
    const { client, events, ws } = connected(t, 0);
    ws.receive(message(2));
    ws.receive({ type: "pin", room: ROOM, seq: 1, target: 1, user: "ann", ts: TS });
    assert.deepEqual(events, [
      ["pin", 1],
      ["message", 2],
    ]);
    assert.equal(client.lastSeq(ROOM), 2);
  });

  test("a replay after a reconnect delivers the changes made while away, each once", (t) => {
    const { client, events, sockets, ws } = connected(t, 0);
    ws.receive(message(1));
    ws.drop();
    client.reconnectNow();
    const again = sockets[1];
    again.open();
    const resume = again.last("subscribe");
    assert.equal(resume.since, 1);
    // A replayed message carries its current state; its changes follow as their own frames.
    const replayed = { ...message(2), body: "", deleted: true };
    for (const f of [message(1), replayed, edit(3, 2), react(4, 1), del(5, 2)]) again.receive(f);
    again.receive({ type: "subscribed", room: ROOM, seq: 5, presence: [], recovered: true, ref: resume.ref });
    assert.deepEqual(events, [
      ["message", 1],
      ["message", 2],
      ["edit", 3],
      ["react", 4],
      ["delete", 5],
    ]);
    assert.equal(client.lastSeq(ROOM), 5);
  });
});

describe("edit(), deleteMessage() and react(), scripted", () => {
  test("each sends its frame with a ref, resolves with its ack and rejects with the error frame's code", async (t) => {
    const { client, ws } = connected(t, 3);
    const published = client.publish(ROOM, "hello"); // in flight alongside: acks go to the right caller
    const edited = client.edit(ROOM, 2, "fixed");
    const given = client.react(ROOM, 2, "👍");
    const taken = client.react(ROOM, 2, "👍", false);
    const deleted = client.deleteMessage(ROOM, 99);
    const [, e, g, k, d] = ws.sent.slice(-5);
    assert.deepEqual(ws.sent.at(-5), { type: "publish", room: ROOM, body: "hello", key: ws.sent.at(-5).key, ref: published });
    assert.deepEqual(e, { type: "edit", room: ROOM, target: 2, body: "fixed", ref: e.ref });
    assert.deepEqual(g, { type: "react", room: ROOM, target: 2, emoji: "👍", on: true, ref: g.ref });
    assert.deepEqual(k, { type: "react", room: ROOM, target: 2, emoji: "👍", on: false, ref: k.ref });
    assert.deepEqual(d, { type: "delete", room: ROOM, target: 99, ref: d.ref });
    assert.equal(new Set([published, e.ref, g.ref, k.ref, d.ref]).size, 5);

    ws.receive({ type: "ack", room: ROOM, seq: 5, ref: e.ref });
    ws.receive({ type: "ack", room: ROOM, seq: 4, ref: published });
    ws.receive({ type: "ack", room: ROOM, seq: 6, ref: g.ref });
    ws.receive({ type: "ack", room: ROOM, seq: 7, ref: k.ref });
    const refusal = { type: "error", code: "not_found", detail: "no message 99 in r", ref: d.ref };
    ws.receive(refusal);
    assert.deepEqual(await edited, { type: "ack", room: ROOM, seq: 5, ref: e.ref });
    assert.equal((await given).seq, 6);
    assert.equal((await taken).seq, 7);
    await assert.rejects(deleted, (err) => {
      assert.ok(err instanceof Error);
      assert.equal(err.code, "not_found");
      assert.equal(err.message, refusal.detail);
      assert.deepEqual(err.frame, refusal);
      return true;
    });
    assert.equal(client.pending.get(published).seq, 4);
  });

  test("made offline they wait for the socket; after a drop delete and react go again, an unanswered edit fails", async (t) => {
    const { client, sockets, ws } = connected(t, 3);
    ws.drop();
    const reacted = client.react(ROOM, 1, "🎉"); // no socket: sent once there is one
    assert.equal(ws.last("react"), undefined);
    client.reconnectNow();
    sockets[1].open();
    const sentReact = sockets[1].last("react");
    assert.equal(sentReact.emoji, "🎉");

    const edited = client.edit(ROOM, 1, "fixed");
    const deleted = client.deleteMessage(ROOM, 2);
    const sentDelete = sockets[1].last("delete");
    sockets[1].drop();
    // The edit may have been stored before the drop: sending it again could store it twice.
    await assert.rejects(edited, (err) => err.code === undefined && /dropped before the edit was answered/.test(err.message));

    client.reconnectNow();
    const third = sockets[2];
    third.open();
    // A repeated delete acks the first delete's seq, a repeated react the seq that set it: safe to resend.
    assert.deepEqual(third.last("delete"), sentDelete);
    assert.deepEqual(third.last("react"), sentReact);
    assert.equal(third.last("edit"), undefined);
    third.receive({ type: "ack", room: ROOM, seq: 5, ref: sentDelete.ref });
    third.receive({ type: "ack", room: ROOM, seq: 4, ref: sentReact.ref });
    assert.equal((await deleted).seq, 5);
    assert.equal((await reacted).seq, 4);

    const waiting = client.react(ROOM, 1, "👍");
    client.close();
    await assert.rejects(waiting, /client closed/);
  });
});
