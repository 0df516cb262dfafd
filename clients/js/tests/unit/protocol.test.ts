// Transcripts of the protocol core: server frames and time in, client frames, socket
// actions and events out. Each runs over both sub-protocols.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../src/core/protocol.js";
import { CODECS, Harness, welcomeMap } from "../harness.js";

const token = (seq: number, text: string, turn_id = "t1") => ({ type: "token", seq, turn_id, text });

for (const codec of CODECS) {
  describe(`session lifecycle (${codec})`, () => {
    it("opens with a fresh hello carrying the session config, and goes live on welcome", () => {
      const h = new Harness({ session: { mode: "voice_agent", diarization: true } }, codec);
      h.start();
      assert.equal(h.opens, 1);
      assert.deepEqual(h.take("state"), [{ state: "connecting", previous: "idle" }]);
      h.opened("api-key");
      assert.deepEqual(h.takeSent(), [
        {
          type: "hello",
          v: 1,
          token: "api-key",
          session: { mode: "voice_agent", diarization: true, client: { name: "@parley/client", version: "0.1.0" } },
        },
      ]);
      h.server(welcomeMap());
      assert.deepEqual(h.types(), ["welcome", "state"]);
      assert.deepEqual(h.take("state"), [{ state: "connected", previous: "connecting" }]);
      assert.deepEqual(h.core.resumeState, { session_id: "s-1", resume_token: "rt-1", last_seq: 0 });
    });

    it("tracks a turn from turn.started to turn.done and acks every 20 durable events", () => {
      const h = new Harness({}, codec).live();
      h.server({ type: "turn.started", seq: 1, turn_id: "t1", input: "text", input_id: "u1" });
      for (let seq = 2; seq <= 20; seq++) h.server(token(seq, `w${seq} `));
      assert.deepEqual(h.takeSent(), [{ type: "ack", seq: 20 }]);
      h.server({
        type: "turn.done",
        seq: 21,
        turn_id: "t1",
        status: "completed",
        usage: { input_tokens: 3, output_tokens: 19 },
        timings: { ttft_ms: 80.5, total_ms: 900 },
      });
      const turn = h.core.turn("t1")!;
      assert.equal(turn.inputId, "u1");
      assert.equal(turn.text, Array.from({ length: 19 }, (_, i) => `w${i + 2} `).join(""));
      assert.equal(turn.done?.status, "completed");
      assert.equal(h.take("token").length, 19);
      assert.deepEqual(h.takeSent(), []);
      h.advance(999);
      assert.deepEqual(h.takeSent(), []);
      h.advance(1);
      assert.deepEqual(h.takeSent(), [{ type: "ack", seq: 21 }]);
    });

    it("ignores, and reports, any event of a turn after its turn.done", () => {
      const h = new Harness({}, codec).live();
      h.server({ type: "turn.started", seq: 1, turn_id: "t1", input: "text" });
      h.server({ type: "turn.done", seq: 2, turn_id: "t1", status: "cancelled", reason: "barge_in", usage: { input_tokens: 1, output_tokens: 0 }, timings: {} });
      h.takeEvents();
      h.server(token(3, "late"));
      h.server({ type: "tool.call", seq: 4, turn_id: "t1", call_id: "c", name: "clock", arguments: {} });
      assert.deepEqual(h.types(), ["error", "error"]);
      assert.match(h.take("error")[0]!.message, /token after turn.done/);
      assert.equal(h.core.turn("t1")!.text, "");
      assert.equal(h.core.lastSeq, 4, "the seq still counts: the events were received");
    });

    it("pings every heartbeat_s, measures the round trip, and gives up after 2 × heartbeat_s of silence", () => {
      const h = new Harness({}, codec).live({ heartbeat_s: 5 });
      h.advance(5000);
      assert.deepEqual(h.takeSent(), [{ type: "ping", id: 1 }]);
      h.advance(40).server({ type: "pong", id: 1, server_time: 12.5 });
      assert.deepEqual(h.take("pong"), [{ id: 1, server_time: 12.5, rtt_ms: 40 }]);
      h.advance(4960);
      assert.deepEqual(h.takeSent(), [{ type: "ping", id: 2 }]);
      // Silence from here: 2 × 5 s after the pong the connection is dead.
      h.advance(5039);
      assert.deepEqual(h.closes, []);
      h.advance(1);
      assert.deepEqual(h.closes, [{ code: 4000, reason: "heartbeat_timeout" }]);
      assert.equal(h.take("error")[0]!.code, "heartbeat_timeout");
      assert.equal(h.core.state, "reconnecting");
    });

    it("resumes after a drop: resume hello, replay without duplicates, audio from audio_next", () => {
      const h = new Harness({}, codec).live();
      for (let i = 0; i < 5; i++) h.core.sendAudio(new Uint8Array([i, i]));
      h.drain();
      assert.deepEqual(
        h.takeSent().map((m) => m["chunk"]),
        [0, 1, 2, 3, 4],
      );
      h.server({ type: "turn.started", seq: 1, turn_id: "t1", input: "speech" }).server(token(2, "Hel"));
      h.closed(1006);
      assert.deepEqual(h.take("state"), [{ state: "reconnecting", previous: "connected", closeCode: 1006, closeReason: "" }]);
      h.core.sendAudio(new Uint8Array([5, 5])); // captured while away
      h.drain();
      assert.deepEqual(h.takeSent(), []);
      // Backoff: attempt 0 is 125–250 ms; random 0.5 gives 188 ms.
      assert.equal(h.core.nextDeadline(), h.now + 188);
      h.untilDeadline();
      assert.equal(h.opens, 2);
      h.opened("key-2");
      assert.deepEqual(h.takeSent(), [{ type: "hello", v: 1, token: "key-2", resume: { token: "rt-1", last_seq: 2 } }]);
      h.server(welcomeMap({ resumed: true, resume_token: "rt-2", last_seq: 4, audio_next: 3 }));
      assert.deepEqual(
        h.takeSent().map((m) => [m["chunk"], Array.from(m["data"] as Uint8Array)]),
        [
          [3, [3, 3]],
          [4, [4, 4]],
          [5, [5, 5]],
        ],
      );
      h.server(token(2, "Hel")).server(token(3, "lo")).server(token(4, "!"));
      assert.equal(h.core.duplicates, 1);
      assert.equal(h.core.turn("t1")!.text, "Hello!");
      assert.deepEqual(h.take("state"), [{ state: "resumed", previous: "reconnecting" }]);
      assert.deepEqual(h.core.resumeState, { session_id: "s-1", resume_token: "rt-2", last_seq: 4 });
    });

    it("treats a seq gap as a violation: reports it, drops the connection and resumes from last_seq", () => {
      const h = new Harness({}, codec).live();
      h.server({ type: "speech.started", seq: 1, at: 0.5 });
      h.server({ type: "speech.stopped", seq: 3, at: 1.5 });
      const [err] = h.take("error");
      assert.equal(err!.code, "seq_gap");
      assert.equal(err!.fatal, false);
      assert.deepEqual(h.closes, [{ code: 4000, reason: "seq_gap" }]);
      assert.equal(h.take("speech.stopped").length, 0);
      h.untilDeadline().opened();
      assert.deepEqual(h.takeSent()[0]!["resume"], { token: "rt-1", last_seq: 1 });
    });

    it("queues text, cancel and update while not connected, and sends them after the welcome's audio", () => {
      const h = new Harness({}, codec);
      h.core.sendText("hi", "u1");
      h.core.sendAudio(new Uint8Array([1]));
      h.core.update({ language: "de" });
      h.core.cancel();
      h.core.endAudio();
      h.start().opened();
      h.takeSent();
      h.server(welcomeMap());
      assert.deepEqual(
        h.takeSent().map((m) => m["type"]),
        ["audio", "text", "update", "cancel", "audio.end"],
      );
    });

    it("ends with bye: sends it, closes 1000, and the session is no longer resumable", () => {
      const h = new Harness({}, codec).live();
      h.core.bye();
      h.drain();
      assert.deepEqual(h.takeSent(), [{ type: "bye" }]);
      assert.deepEqual(h.closes, [{ code: 1000, reason: "bye" }]);
      assert.equal(h.core.state, "closed");
      assert.equal(h.core.resumeState, null);
      assert.equal(h.core.nextDeadline(), null);
      assert.throws(() => h.core.sendText("more"), UsageError);
      h.closed(1000); // the socket's own close event changes nothing now
      assert.deepEqual(h.take("state"), [{ state: "closed", previous: "connected" }]);
    });

    it("disconnect keeps the session resumable by a later client", () => {
      const h = new Harness({}, codec).live();
      h.server({ type: "speech.started", seq: 1, at: 0 });
      h.core.disconnect();
      h.drain();
      assert.deepEqual(h.closes, [{ code: 1000, reason: "detached" }]);
      const saved = h.core.resumeState!;
      const later = new Harness({ resume: saved }, codec).start().opened();
      assert.deepEqual(later.takeSent()[0]!["resume"], { token: "rt-1", last_seq: 1 });
      later.server(welcomeMap({ resumed: true, last_seq: 3, audio_next: 7 }));
      later.server({ type: "speech.stopped", seq: 2, at: 1 });
      assert.equal(later.take("speech.stopped").length, 1);
      later.core.sendAudio(new Uint8Array([9]));
      later.drain();
      assert.equal(later.takeSent()[0]!["chunk"], 7, "numbering continues where the server is");
    });
  });

  describe(`close codes (${codec})`, () => {
    const stopping: [number, string][] = [
      [4001, "unauthorized"],
      [4003, "protocol_error"],
      [4004, "resume_failed"],
      [4009, "superseded"],
    ];
    for (const [code, name] of stopping) {
      it(`${code} stops reconnecting and surfaces ${name}`, () => {
        const h = new Harness({}, codec).live();
        h.closed(code, "why");
        const [err] = h.take("error");
        assert.equal(err!.code, name);
        assert.equal(err!.fatal, true);
        assert.equal(h.core.state, "closed");
        assert.equal(h.core.nextDeadline(), null);
        h.advance(60_000);
        assert.equal(h.opens, 1);
      });
    }

    it("4004 after the server's replay_gap error surfaces replay_gap", () => {
      const h = new Harness({}, codec).live();
      h.server({ type: "error", code: "replay_gap", message: "events 3..9 are gone", fatal: true });
      h.closed(4004);
      assert.deepEqual(
        h.take("error").map((e) => [e.source, e.code, e.fatal]),
        [
          ["server", "replay_gap", true],
          ["client", "replay_gap", true],
        ],
      );
    });

    it("4004 says why in the server's words and forgets the session it cannot resume", () => {
      const h = new Harness({}, codec).live();
      assert.notEqual(h.core.resumeState, null);
      h.server({ type: "error", code: "resume_failed", message: "unknown or expired session", fatal: true });
      h.closed(4004, "resume_failed");
      const [, mine] = h.take("error");
      assert.deepEqual(mine, {
        source: "client",
        code: "resume_failed",
        message: "the session cannot be resumed (unknown or expired session); start a new session",
        fatal: true,
      });
      assert.equal(h.core.resumeState, null);
    });

    it("4008 (slow consumer) reconnects at once and resumes", () => {
      const h = new Harness({}, codec).live();
      h.server({ type: "speech.started", seq: 1, at: 0 });
      h.closed(4008);
      assert.equal(h.opens, 2);
      h.opened();
      assert.deepEqual(h.takeSent()[0]!["resume"], { token: "rt-1", last_seq: 1 });
    });

    it("1001 after goaway reconnects after reconnect_after_ms", () => {
      const h = new Harness({}, codec).live();
      h.server({ type: "goaway", reason: "drain", reconnect_after_ms: 3000 });
      assert.deepEqual(h.take("goaway"), [{ type: "goaway", reason: "drain", reconnect_after_ms: 3000 }]);
      h.closed(1001);
      h.advance(2999);
      assert.equal(h.opens, 1);
      h.advance(1);
      assert.equal(h.opens, 2);
    });

    it("4029 retries no sooner than 5 s, unless the quota is exhausted", () => {
      const h = new Harness({}, codec).live();
      h.server({ type: "error", code: "overloaded", message: "busy", fatal: true }).closed(4029);
      assert.equal(h.core.nextDeadline(), h.now + 5000);
      const q = new Harness({}, codec).live();
      q.server({ type: "error", code: "quota_exceeded", message: "no", fatal: true }).closed(4029);
      assert.equal(q.core.state, "closed");
    });

    it("gives up after maxConnectAttempts when no connection ever got a welcome", () => {
      const h = new Harness({ maxConnectAttempts: 3 }, codec).start();
      h.closed(1006);
      assert.equal(h.core.state, "reconnecting");
      h.untilDeadline().closed(1006).untilDeadline();
      assert.equal(h.opens, 3);
      h.closed(1006);
      assert.equal(h.core.state, "closed");
      assert.equal(h.take("error").at(-1)!.code, "connect_failed");
    });

    it("stops when the resume window passes while reconnecting", () => {
      const h = new Harness({}, codec).live({ resume_ttl_s: 2 });
      h.closed(1006);
      let guard = 0;
      while (h.core.state !== "closed" && guard++ < 50) {
        h.untilDeadline();
        if ((h.core.state as string) !== "closed") h.closed(1006);
      }
      assert.equal(h.take("error").at(-1)!.code, "resume_expired");
      assert.ok(h.now - 1000 >= 2000);
    });

    it("gives up a handshake that gets no welcome in time, then retries", () => {
      const h = new Harness({ handshakeTimeoutMs: 3000 }, codec).start().opened();
      h.advance(3000);
      assert.deepEqual(h.closes, [{ code: 4000, reason: "handshake_timeout" }]);
      assert.equal(h.core.state, "reconnecting");
    });
  });

  describe(`hostile input (${codec})`, () => {
    it("survives garbage frames, reporting each, and carries on", () => {
      const h = new Harness({}, codec).live();
      const garbage = [
        new Uint8Array([0xc1]),
        new Uint8Array([0xff, 0x00, 0x12]),
        new Uint8Array([]),
        "",
        "{",
        "[1,2]",
        "null",
        '{"type": 7}',
        '{"no": "type"}',
      ];
      for (const g of garbage) h.frame(g);
      assert.equal(h.take("error").length, garbage.length);
      h.server({ type: "speech.started", seq: 1, at: 0 });
      assert.equal(h.take("speech.started").length, 1);
      assert.equal(h.core.state, "connected");
    });

    it("drops messages with mistyped or missing fields but counts their seq", () => {
      const h = new Harness({}, codec).live();
      h.server({ type: "token", seq: 1, turn_id: 5, text: "x" });
      h.server({ type: "caption.final", seq: 2, segment: "zero", text: "", start: 0, end: 1, speaker: null });
      h.server({ type: "turn.done", seq: 3, turn_id: "t", status: "completed", usage: {}, timings: {} });
      h.server({ type: "speech.started", seq: 4 });
      const errors = h.take("error");
      assert.deepEqual(
        errors.map((e) => e.message),
        [
          "token.turn_id: expected string, got number",
          "caption.final.segment: expected integer ≥ 0, got string",
          "turn.done.usage.input_tokens: expected integer ≥ 0, got undefined",
          "speech.started.at: expected number, got undefined",
        ],
      );
      assert.equal(h.core.lastSeq, 4);
      assert.deepEqual(h.types(), []);
    });

    it("rejects durable events without seq, and bad seq values", () => {
      const h = new Harness({}, codec).live();
      for (const seq of [undefined, 0, -1, 1.5, "1", null]) {
        h.server({ type: "speech.started", at: 0, ...(seq === undefined ? {} : { seq }) });
      }
      assert.equal(h.take("error").length, 6);
      assert.equal(h.core.lastSeq, 0);
    });

    it("takes seq out of order as duplicates or a gap, never silently", () => {
      const h = new Harness({}, codec).live();
      h.server({ type: "speech.started", seq: 1, at: 0 });
      h.server({ type: "speech.stopped", seq: 2, at: 1 });
      h.server({ type: "speech.started", seq: 1, at: 0 });
      h.server({ type: "speech.started", seq: 2, at: 0 });
      assert.equal(h.core.duplicates, 2);
      assert.equal(h.take("speech.started").length, 1);
      h.server({ type: "speech.started", seq: 5, at: 0 });
      assert.equal(h.take("error")[0]!.code, "seq_gap");
      assert.equal(h.core.lastSeq, 2);
    });

    it("rejects content before welcome and a second welcome", () => {
      const h = new Harness({}, codec).start().opened();
      h.server({ type: "token", seq: 1, turn_id: "t", text: "early" });
      assert.match(h.take("error")[0]!.message, /token before welcome/);
      h.server(welcomeMap()).server(welcomeMap());
      assert.match(h.take("error")[0]!.message, /second welcome/);
      assert.equal(h.take("welcome").length, 1);
    });

    it("rejects an invalid welcome, and stays in the handshake", () => {
      const h = new Harness({}, codec).start().opened();
      h.server(welcomeMap({ heartbeat_s: 0 }));
      h.server(welcomeMap({ last_seq: -2 }));
      h.server(welcomeMap({ limits: "none" }));
      assert.equal(h.take("error").length, 3);
      assert.equal(h.core.state, "connecting");
    });

    it("passes unknown types on, counting their seq", () => {
      const h = new Harness({}, codec).live();
      h.server({ type: "future.thing", seq: 1, x: [1, 2] });
      h.server({ type: "other.thing" });
      assert.deepEqual(h.types(), ["unknown", "unknown"]);
      assert.equal(h.core.lastSeq, 1);
    });

    it("never throws on generated frames", async () => {
      const { prng, serverFrame } = await import("../harness.js");
      const rnd = prng(7);
      const h = new Harness({}, codec).live();
      const values = [0, 1, -1, 2.5, "", "x", null, true, [], {}, 1e300, 2 ** 53];
      const types = ["token", "turn.started", "turn.done", "caption.final", "caption.partial", "tool.call", "tool.result", "error", "pong", "goaway", "speech.started", "welcome", "x"];
      const keys = ["seq", "turn_id", "text", "segment", "start", "end", "usage", "timings", "code", "fatal", "message", "words", "status", "arguments", "call_id", "ok", "at"];
      for (let i = 0; i < 2000; i++) {
        if (rnd() < 0.3) {
          const bytes = new Uint8Array(Math.floor(rnd() * 40));
          for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rnd() * 256);
          h.frame(rnd() < 0.5 ? bytes : Buffer.from(bytes).toString("latin1"));
        } else {
          const m: Record<string, unknown> = { type: types[Math.floor(rnd() * types.length)] };
          for (const k of keys) if (rnd() < 0.5) m[k] = values[Math.floor(rnd() * values.length)];
          h.frame(serverFrame(codec, m));
        }
        if (h.core.state === "reconnecting") h.untilDeadline().opened().server(welcomeMap({ resumed: true, last_seq: h.core.lastSeq }));
      }
      assert.ok(h.take("error").length > 100);
    });
  });

  describe(`audio (${codec})`, () => {
    it("bounds the buffer while disconnected: drops the oldest, reports overflow once, then the gap", () => {
      // 100 ms of 16 kHz s16 mono is 3200 bytes: 320-byte chunks of 10 ms, 10 fit.
      const h = new Harness({ audioBufferMs: 100 }, codec).live();
      h.core.sendAudio(new Uint8Array(320));
      h.drain();
      h.takeSent();
      h.closed(1006);
      h.takeEvents();
      for (let i = 0; i < 15; i++) h.core.sendAudio(new Uint8Array(320).fill(i + 1));
      h.drain();
      const overflow = h.take("error");
      assert.deepEqual(
        overflow.map((e) => e.code),
        ["audio_overflow"],
      );
      assert.equal(h.core.audioStats.bufferedChunks, 10);
      assert.equal(h.core.audioStats.droppedUnsent, 5);
      h.untilDeadline().opened().takeSent();
      h.server(welcomeMap({ resumed: true, audio_next: 1 }));
      assert.deepEqual(h.take("audio.dropped"), [{ from: 1, to: 6 }]);
      assert.deepEqual(
        h.takeSent().map((m) => m["chunk"]),
        [6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
      );
    });

    it("refuses chunks larger than the server's frame limit", () => {
      const h = new Harness({}, codec).live({ limits: { max_frame_bytes: 1000, max_text_chars: 5 } });
      assert.throws(() => h.core.sendAudio(new Uint8Array(1000)), UsageError);
      assert.throws(() => h.core.sendText("x".repeat(10)), UsageError);
    });
  });
}

describe("binary audio frames (json)", () => {
  it("sends bare binary frames while the index is implied, and an indexed message after a gap", () => {
    const h = new Harness({ audioBufferMs: 100 }, "json", true).live();
    h.core.sendAudio(new Uint8Array(320));
    h.core.sendAudio(new Uint8Array(320));
    h.drain();
    assert.deepEqual(
      h.takeSent().map((m) => m["binary"] === true),
      [true, true],
    );
    h.closed(1006);
    for (let i = 0; i < 12; i++) h.core.sendAudio(new Uint8Array(320));
    h.untilDeadline().opened().takeSent();
    h.server(welcomeMap({ resumed: true, audio_next: 2 }));
    const sent = h.takeSent();
    assert.equal(sent[0]!["chunk"], 4, "after the gap the index must be explicit");
    assert.ok(sent.slice(1).every((m) => m["binary"] === true));
  });
});

describe("acks", () => {
  it("acks nothing twice, and nothing a new connection's hello already said", () => {
    const h = new Harness({ ackEvery: 2, ackAfterMs: 100 }).live();
    h.server({ type: "speech.started", seq: 1, at: 0 });
    h.advance(100);
    assert.deepEqual(h.takeSent(), [{ type: "ack", seq: 1 }]);
    h.server({ type: "speech.stopped", seq: 2, at: 0 });
    h.closed(1006).untilDeadline().opened();
    h.server(welcomeMap({ resumed: true, last_seq: 2 }));
    h.takeSent();
    h.advance(200);
    assert.deepEqual(h.takeSent(), []);
  });
});
