// The socket shell over real WebSockets on loopback, against a scripted peer: what the
// core decides must happen on the wire, on time.

import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { WebSocket } from "ws";
import type { ParleyError, StateChange } from "../../src/core/events.js";
import { ParleyClient, type ClientOptions } from "../../src/socket/client.js";
import { Peer, sleep, welcome } from "./peer.js";

let peer: Peer | null = null;
let client: ParleyClient | null = null;

afterEach(async () => {
  client?.disconnect();
  client = null;
  await peer?.stop();
  peer = null;
});

function makeClient(p: Peer, over: Partial<ClientOptions> = {}): ParleyClient {
  client = new ParleyClient({
    url: p.url,
    token: "key-1",
    WebSocket,
    backoff: { baseMs: 20, maxMs: 100 },
    session: { mode: "voice_agent" },
    ...over,
  });
  return client;
}

function record<T>(c: ParleyClient, type: "state" | "error"): T[] {
  const out: T[] = [];
  c.on(type, (d) => out.push(d as T));
  return out;
}

describe("ParleyClient over a socket", () => {
  it("speaks msgpack, resumes after the socket dies, skips replayed duplicates and re-sends audio", async () => {
    peer = await Peer.start();
    const c = makeClient(peer);
    const states = record<StateChange>(c, "state");
    c.connect();
    const first = await peer.connection(0);
    assert.equal(first.protocol, "parley.v1.msgpack");
    const [hello] = await first.messages("hello");
    assert.deepEqual(hello!["session"], { mode: "voice_agent", client: { name: "@parley/client", version: "0.1.0" } });
    first.send(welcome());
    first.send({ type: "turn.started", seq: 1, turn_id: "t1", input: "speech" });
    first.send({ type: "token", seq: 2, turn_id: "t1", text: "Hel" });
    await new Promise<void>((resolve) => c.once("token", () => resolve()));
    for (let i = 0; i < 3; i++) c.sendAudio(new Uint8Array([i]));
    await first.messages("audio", 3);
    first.ws.terminate();

    const second = await peer.connection(1);
    c.sendAudio(new Uint8Array([3])); // while reconnecting or just reconnected: either way it must arrive
    const [resume] = await second.messages("hello");
    assert.deepEqual(resume!["resume"], { token: "rt-1", last_seq: 2 });
    second.send(welcome({ resumed: true, resume_token: "rt-2", last_seq: 3, audio_next: 2 }));
    second.send({ type: "token", seq: 2, turn_id: "t1", text: "Hel" });
    second.send({ type: "token", seq: 3, turn_id: "t1", text: "lo" });
    const audio = await second.messages("audio", 2);
    assert.deepEqual(
      audio.map((m) => [m["chunk"], Array.from(m["data"] as Uint8Array)]),
      [
        [2, [2]],
        [3, [3]],
      ],
    );
    await sleep(50);
    assert.equal(c.turn("t1")!.text, "Hello");
    assert.deepEqual(
      states.map((s) => s.state),
      ["connecting", "connected", "reconnecting", "resumed"],
    );
    assert.deepEqual(c.resumeState, { session_id: "s-1", resume_token: "rt-2", last_seq: 3 });
  });

  it("does not fight a newer connection: 4009 closes for good", async () => {
    peer = await Peer.start();
    const c = makeClient(peer);
    const errors = record<ParleyError>(c, "error");
    c.connect();
    const first = await peer.connection(0);
    await first.messages("hello");
    first.send(welcome());
    first.send({ type: "error", code: "superseded", message: "another connection resumed", fatal: true });
    first.ws.close(4009, "superseded");
    await sleep(300);
    assert.equal(c.state, "closed");
    assert.equal(peer.connections.length, 1);
    assert.deepEqual(
      errors.map((e) => [e.source, e.code, e.fatal]),
      [
        ["server", "superseded", true],
        ["client", "superseded", true],
      ],
    );
  });

  it("pings, and gives up on a silent server after 2 × heartbeat_s, then resumes", async () => {
    peer = await Peer.start();
    const c = makeClient(peer);
    const errors = record<ParleyError>(c, "error");
    c.connect();
    const first = await peer.connection(0);
    await first.messages("hello");
    const t0 = performance.now();
    first.send(welcome({ heartbeat_s: 0.1 }));
    await first.messages("ping", 1);
    assert.equal(await first.closed(), 4000);
    const waited = performance.now() - t0;
    assert.ok(waited >= 190 && waited < 1000, `${waited} ms`);
    assert.equal(errors[0]!.code, "heartbeat_timeout");
    const second = await peer.connection(1);
    const [hello] = await second.messages("hello");
    assert.deepEqual(hello!["resume"], { token: "rt-1", last_seq: 0 });
  });

  it("follows the server to JSON, and fetches a fresh token for each connection", async () => {
    peer = await Peer.start(() => "parley.v1.json");
    let tokens = 0;
    const c = makeClient(peer, { token: async () => `eph-${++tokens}` });
    c.sendText("queued before connecting", "u1");
    c.connect();
    const first = await peer.connection(0);
    assert.equal(first.protocol, "parley.v1.json");
    const [hello] = await first.messages("hello");
    assert.equal(hello!["token"], "eph-1");
    first.send(welcome());
    const [text] = await first.messages("text");
    assert.deepEqual(text, { type: "text", text: "queued before connecting", id: "u1" });
    first.ws.close(1011, "internal");
    const second = await peer.connection(1);
    const [again] = await second.messages("hello");
    assert.equal(again!["token"], "eph-2");
  });

  it("waits reconnect_after_ms after a goaway before coming back", async () => {
    peer = await Peer.start();
    const c = makeClient(peer);
    c.connect();
    const first = await peer.connection(0);
    await first.messages("hello");
    first.send(welcome());
    first.send({ type: "goaway", reason: "drain", reconnect_after_ms: 250 });
    await sleep(20);
    const t0 = performance.now();
    first.ws.close(1001, "going away");
    await peer.connection(1);
    const waited = performance.now() - t0;
    assert.ok(waited >= 240, `${waited} ms`);
  });

  it("bye ends the session and stops every timer", async () => {
    peer = await Peer.start();
    const c = makeClient(peer);
    c.connect();
    const first = await peer.connection(0);
    await first.messages("hello");
    first.send(welcome());
    await sleep(30);
    c.bye();
    await first.messages("bye");
    assert.equal(await first.closed(), 1000);
    assert.equal(c.state, "closed");
    assert.equal(c.resumeState, null);
  });
});
