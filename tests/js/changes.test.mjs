// Edit, delete and react with client.js against the real cluster (see helpers.mjs): the
// changes share the room's seq stream with messages, across nodes and across a reconnect.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { cluster, deferred, eventually, makeClient, newRoom, nextEvent, skipCluster, tokenUrl } from "./helpers.mjs";

const [NODE_A, NODE_B] = cluster.nodePorts;
const SEQ_TYPES = ["message", "edit", "delete", "react"];

/** A client whose `stream` logs every event of the seq stream, of any of the four types. */
function streamClient(t, options) {
  const c = makeClient(t, options);
  c.stream = [];
  for (const type of SEQ_TYPES) c.client.addEventListener(type, ({ detail }) => c.stream.push(detail));
  return c;
}

/** The stream of `room` as [type, seq, target or body] rows. */
function rows(c, room) {
  return c.stream.filter((f) => f.room === room).map((f) => [f.type, f.seq, f.type === "message" ? f.body : f.target]);
}

async function subscribed(clients, room) {
  const answers = clients.map(({ client }) => nextEvent(client, "subscribed", (d) => d.room === room));
  for (const { client } of clients) client.subscribe(room);
  await Promise.all(answers);
}

describe("edit, delete and react against the cluster", { skip: skipCluster, timeout: 60_000 }, () => {
  test("changes from one node reach a client on the other in seq order with the messages; history has the final state", async (t) => {
    const room = newRoom();
    const kim = streamClient(t, { url: tokenUrl("js_kim", NODE_A) });
    const lee = streamClient(t, { url: tokenUrl("js_lee", NODE_B) });
    kim.client.connect();
    lee.client.connect();
    await subscribed([kim, lee], room);
    kim.client.publish(room, "one");
    kim.client.publish(room, "two");
    await eventually(() => lee.client.lastSeq(room) === 2, "both messages on lee's side");

    const edited = await kim.client.edit(room, 1, "one, fixed");
    assert.deepEqual(edited, { type: "ack", room, seq: 3, ref: edited.ref });
    assert.equal((await lee.client.react(room, 1, "👍")).seq, 4);
    assert.equal((await kim.client.react(room, 1, "👍")).seq, 5);
    // Asking for the state a reaction already has stores nothing: the seq that set it.
    assert.equal((await lee.client.react(room, 1, "👍")).seq, 4);
    assert.equal((await kim.client.deleteMessage(room, 2)).seq, 6);
    assert.equal((await kim.client.deleteMessage(room, 2)).seq, 6, "a repeated delete acks the first");
    await assert.rejects(lee.client.edit(room, 1, "not mine"), (err) => err.code === "forbidden" && err.frame.type === "error");
    await assert.rejects(kim.client.edit(room, 2, "deleted"), { code: "not_found" });
    await assert.rejects(kim.client.react(room, 1, "not an emoji"), { code: "bad_request" });

    await eventually(() => lee.client.lastSeq(room) === 6 && kim.client.lastSeq(room) === 6, "seq 6 on both");
    const expected = [
      ["message", 1, "one"],
      ["message", 2, "two"],
      ["edit", 3, 1],
      ["react", 4, 1],
      ["react", 5, 1],
      ["delete", 6, 2],
    ];
    assert.deepEqual(rows(lee, room), expected);
    assert.deepEqual(rows(kim, room), expected);
    const [, , edit, react, , del] = lee.stream;
    assert.deepEqual([edit.user, edit.body], ["js_kim", "one, fixed"]);
    assert.deepEqual([react.user, react.emoji, react.on], ["js_lee", "👍", true]);
    assert.equal(del.user, "js_kim");
    assert.ok([edit, react, del].every((f) => !Number.isNaN(Date.parse(f.ts))));

    const [first, second] = await lee.client.history(room);
    assert.deepEqual([first.seq, first.body, first.deleted], [1, "one, fixed", undefined]);
    assert.ok(!Number.isNaN(Date.parse(first.edited)));
    assert.deepEqual(first.reactions, { "👍": ["js_lee", "js_kim"] });
    assert.deepEqual([second.seq, second.deleted, "body" in second], [2, true, false]);
    assert.deepEqual(kim.log.errors, []);
  });

  test("a client away while messages were edited, reacted to and deleted gets each change once, in order, on resuming", async (t) => {
    const room = newRoom();
    let gate = null;
    let connects = 0;
    const url = async () => {
      connects += 1;
      if (gate) await gate.promise;
      return tokenUrl("js_mia", connects === 1 ? NODE_A : NODE_B);
    };
    const mia = streamClient(t, { url });
    const kim = streamClient(t, { url: tokenUrl("js_kim", NODE_B) });
    mia.client.connect();
    kim.client.connect();
    await subscribed([mia, kim], room);
    kim.client.publish(room, "one");
    kim.client.publish(room, "two");
    await eventually(() => mia.client.lastSeq(room) === 2, "mia has 1..2");

    // The socket dies under mia; the url() of her reconnect waits until the changes are stored.
    gate = deferred();
    const sentBefore = mia.sent.length;
    const reconnecting = nextEvent(mia.client, "state", (d) => d.state === "reconnecting");
    mia.client.ws.terminate();
    await reconnecting;
    kim.client.publish(room, "three");
    await eventually(() => kim.client.lastSeq(room) === 3, "kim has 3");
    assert.equal((await kim.client.edit(room, 3, "three, fixed")).seq, 4);
    assert.equal((await kim.client.react(room, 1, "🎉")).seq, 5);
    assert.equal((await kim.client.deleteMessage(room, 2)).seq, 6);
    assert.equal(mia.client.lastSeq(room), 2);
    gate.resolve();

    await eventually(() => mia.client.lastSeq(room) === 6, "mia resumed up to seq 6");
    assert.deepEqual(rows(mia, room), [
      ["message", 1, "one"],
      ["message", 2, "two"],
      // Replayed in its current state, then its change as a frame of its own.
      ["message", 3, "three, fixed"],
      ["edit", 4, 3],
      ["react", 5, 1],
      ["delete", 6, 2],
    ]);
    assert.ok(!Number.isNaN(Date.parse(mia.stream[2].edited)));
    assert.deepEqual([mia.stream[5].user, mia.stream[4].emoji], ["js_kim", "🎉"]);
    const resubscribe = mia.sent.slice(sentBefore).find((f) => f.type === "subscribe");
    assert.deepEqual([resubscribe.room, resubscribe.since], [room, 2]);
    assert.equal(mia.received.find((f) => f.type === "subscribed" && f.ref === resubscribe.ref).recovered, true);
  });
});
