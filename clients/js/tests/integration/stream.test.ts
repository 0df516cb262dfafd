// ParleyClient against the real server (tests/support/numbered.py in every mode:
// `count N [interval_ms] [pad]` emits N caption.final numbered 0..N-1, `tokens N
// [interval_ms]` runs a turn of N deltas "i,", each audio chunk yields a caption.final
// whose segment is its index): both sub-protocols, audio, cancel, acks and takeover.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { open, sentOf, serverErrors, settle, useServer } from "./fixtures.js";
import { range, sleep } from "./observe.js";
import { numberedConfig } from "./server.js";

describe("the session over the real server", { timeout: 60_000 }, () => {
  const server = useServer(numberedConfig({ limits: { heartbeat_s: 2 } }));

  for (const protocol of ["msgpack", "json"] as const) {
    it(`speaks ${protocol}: numbered events with gap-free seq, heartbeats, bye`, async () => {
      const { client, rec, sockets } = open(server().url, { protocol });
      client.connect();
      client.sendText("count 20"); // waits for the welcome
      await rec.until(() => rec.finals.length === 20, "20 finals");
      assert.equal(sockets[0]!.ws.protocol, `parley.v1.${protocol}`);
      const welcome = rec.welcomes[0]!;
      assert.equal(welcome.resumed, false);
      assert.equal(welcome.mode, "agent");
      assert.deepEqual([welcome.last_seq, welcome.audio_next, welcome.heartbeat_s], [0, 0, 2]);
      assert.ok(welcome.limits.replay_events! > 0 && welcome.limits.max_text_chars! > 0);
      assert.deepEqual(rec.segments(), range(20));
      assert.deepEqual(
        rec.finals.map((f) => f.seq),
        range(20, 1),
      );
      assert.equal(client.resumeState!.last_seq, 20);

      // The client pings every heartbeat_s; the pong carries the round trip.
      await rec.until(() => rec.pongs.length > 0, "a pong", 5_000);
      const pong = rec.pongs[0]!;
      assert.ok(pong.rtt_ms !== null && pong.rtt_ms >= 0 && pong.rtt_ms < 1_000, `rtt ${pong.rtt_ms}`);
      assert.ok(pong.server_time > 1.7e9);
      assert.deepEqual(rec.stateNames(), ["connecting", "connected"]);
      assert.deepEqual(rec.errors, []);

      // bye ends the session: its resume token is refused afterwards.
      const saved = client.resumeState!;
      client.bye();
      assert.equal(client.resumeState, null);
      const late = open(server().url, { resume: saved });
      late.client.connect();
      await late.rec.until(() => late.client.state === "closed", "the refused resume");
      assert.equal(serverErrors(late.rec, "resume_failed").length, 1);
      assert.equal(late.rec.states.at(-1)!.closeCode, 4004);
    });
  }

  it("sends audio as bare binary frames in JSON mode with binaryAudio", async () => {
    const { client, rec, sockets } = open(server().url, {
      protocol: "json",
      binaryAudio: true,
      session: { mode: "caption" },
    });
    client.connect();
    for (let i = 0; i < 3; i++) client.sendAudio(new Uint8Array(320).fill(i)); // before the welcome
    await rec.until(() => rec.finals.length === 3, "3 finals");
    assert.deepEqual(
      rec.finals.map((f) => f.text),
      ["chunk 0 320", "chunk 1 320", "chunk 2 320"],
    );
    const frames = sockets[0]!.sent;
    assert.equal(frames.filter((f) => typeof f !== "string").length, 3);
    assert.deepEqual(rec.clientErrors(), []);
  });

  it("cancels a running turn: turn.done cancelled, then no token of it", async () => {
    const { client, rec } = open(server().url);
    client.connect();
    client.sendText("tokens 1000 5", "m1");
    await rec.until(() => rec.tokens.length >= 3, "3 tokens");
    const turnId = rec.started[0]!.turn_id;
    client.cancel(turnId);
    await rec.until(() => rec.done.length === 1, "turn.done");
    const done = rec.done[0]!;
    assert.deepEqual([done.turn_id, done.status], [turnId, "cancelled"]);
    const events = rec.tokens.length;
    await sleep(300);
    assert.equal(rec.tokens.length, events, "no token after turn.done");
    assert.equal(rec.log.lastIndexOf("token") < rec.log.indexOf("turn.done"), true);
    // Deltas "0," "1," … (the server may merge queued ones): a prefix of the 1000, cut short.
    const turn = client.turn(turnId)!;
    const deltas = turn.text.split(",").slice(0, -1).map(Number);
    assert.deepEqual(deltas, range(deltas.length));
    assert.ok(deltas.length >= 3 && deltas.length < 1000, `${deltas.length} deltas: the turn stopped early`);
    assert.equal(turn.done!.status, "cancelled");
    assert.deepEqual(client.activeTurns(), []);
    // A token after turn.done would have been reported as a violation.
    assert.deepEqual(rec.errors, []);
  });

  it("acks let the server trim its replay buffer", async () => {
    // The sessions of earlier tests end with their bye.
    const sessions = async () =>
      (await server().metric("parley_sessions", 'state="attached"')) + (await server().metric("parley_sessions", 'state="detached"'));
    assert.equal(await settle(sessions, 0, 3_000), 0);
    const base = await server().metric("parley_replay_buffer_events");
    const lazy = open(server().url, { ackEvery: 1_000_000, ackAfterMs: 3_600_000 });
    const eager = open(server().url, { ackEvery: 20, ackAfterMs: 200 });
    for (const { client } of [lazy, eager]) {
      client.connect();
      client.sendText("count 200");
    }
    await lazy.rec.until(() => lazy.rec.finals.length === 200, "200 finals (lazy)");
    await eager.rec.until(() => eager.rec.finals.length === 200, "200 finals (eager)");
    // The lazy session holds all 200; the eager one, after its last ack, none.
    const probe = async () => (await server().metric("parley_replay_buffer_events")) - base;
    assert.equal(await settle(probe, 200, 3_000), 200);

    const acks = sentOf(eager.sockets[0]!, "ack").map((m) => m["seq"] as number);
    assert.equal(acks.at(-1), 200);
    assert.ok(acks.length >= 10, `${acks.length} acks: at least one per 20 events`);
    assert.ok(
      acks.every((seq, i) => i === 0 || seq > acks[i - 1]!),
      `acks only go forward: ${acks.join(" ")}`,
    );
    assert.deepEqual(sentOf(lazy.sockets[0]!, "ack"), []);
    assert.deepEqual([...lazy.rec.errors, ...eager.rec.errors], []);
  });

  it("takeover: a second client resuming the session gets it, the first sees 4009 and stops", async () => {
    const a = open(server().url);
    a.client.connect();
    await a.rec.until(() => a.rec.welcomes.length === 1, "welcome");
    const b = open(server().url, { resume: a.client.resumeState });
    b.client.connect();
    await a.rec.until(() => a.client.state === "closed", "the first client closed");
    assert.equal(a.rec.states.at(-1)!.closeCode, 4009);
    assert.equal(serverErrors(a.rec, "superseded").length, 1);
    const mine = a.rec.clientErrors();
    assert.deepEqual(
      mine.map((e) => [e.code, e.fatal]),
      [["superseded", true]],
    );

    assert.equal(b.rec.welcomes[0]!.resumed, true);
    assert.equal(b.rec.welcomes[0]!.session_id, a.rec.welcomes[0]!.session_id);
    b.client.sendText("count 3");
    await b.rec.until(() => b.rec.finals.length === 3, "3 finals");
    assert.deepEqual(b.rec.segments(), [0, 1, 2]);
    await sleep(300);
    // The first does not fight back: no new connection of its own, none lost by the second.
    assert.equal(a.sockets.length, 1);
    assert.equal(b.sockets.length, 1);
    assert.equal(b.client.state, "resumed");
    assert.deepEqual(b.rec.errors, []);
  });
});
