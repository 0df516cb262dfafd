import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AudioOutbox } from "../../src/core/audio-outbox.js";
import { CaptionTracker } from "../../src/core/captions.js";
import { IllegalTransition, PhaseMachine, publicState } from "../../src/core/connection-state.js";
import { Emitter } from "../../src/core/emitter.js";
import type { CaptionFinalMessage, CaptionPartialMessage } from "../../src/core/messages.js";
import { backoffDelay, closeVerdict } from "../../src/core/policy.js";
import { AckSchedule, SeqTracker } from "../../src/core/seq.js";
import { TurnTracker } from "../../src/core/turns.js";

describe("SeqTracker", () => {
  it("classifies next, duplicate and gap, and accepts only the next", () => {
    const s = new SeqTracker(3);
    assert.deepEqual([1, 3, 4, 6].map((n) => s.classify(n)), ["duplicate", "duplicate", "next", "gap"]);
    assert.throws(() => s.accept(6), RangeError);
    s.accept(4);
    assert.equal(s.lastSeq, 4);
  });
});

describe("AckSchedule", () => {
  it("is due after `every` events or `afterMs` after the first, and never repeats an ack", () => {
    const a = new AckSchedule(3, 500);
    assert.equal(a.dueAt(), null);
    assert.equal(a.note(100), false);
    assert.equal(a.note(200), false);
    assert.equal(a.dueAt(), 600);
    assert.equal(a.note(300), true);
    assert.equal(a.take(3), 3);
    assert.equal(a.dueAt(), null);
    assert.equal(a.take(3), null);
    assert.throws(() => new AckSchedule(0, 1), RangeError);
  });
});

describe("AudioOutbox", () => {
  const chunk = (n: number, size = 10) => new Uint8Array(size).fill(n);

  it("numbers chunks and keeps at most maxBytes, the newest always", () => {
    const o = new AudioOutbox(30);
    for (let i = 0; i < 5; i++) o.push(chunk(i));
    assert.deepEqual(o.stats, { bufferedChunks: 3, bufferedBytes: 30, nextChunk: 5, droppedUnsent: 2 });
    o.push(chunk(9, 100));
    assert.equal(o.stats.bufferedChunks, 1);
  });

  it("counts as lost only what no connection took", () => {
    const o = new AudioOutbox(20);
    o.push(chunk(0)).entry.sent = true;
    o.push(chunk(1)).entry.sent = true;
    assert.equal(o.push(chunk(2)).droppedUnsent, 0);
    assert.equal(o.push(chunk(3)).droppedUnsent, 0);
    assert.equal(o.push(chunk(4)).droppedUnsent, 1);
  });

  it("resends from audio_next after a resume and names the gap below what it kept", () => {
    const o = new AudioOutbox(1000);
    for (let i = 0; i < 4; i++) o.push(chunk(i)).entry.sent = true;
    const { resend, gap } = o.onWelcome(2, true);
    assert.deepEqual(resend.map((e) => [e.chunk, e.sent]), [[2, false], [3, false]]);
    assert.equal(gap, null);
    const small = new AudioOutbox(20);
    for (let i = 0; i < 5; i++) small.push(chunk(i));
    assert.deepEqual(small.onWelcome(1, true).gap, { from: 1, to: 3 });
  });

  it("renumbers unsent audio for a fresh session and forgets what the old one took", () => {
    const o = new AudioOutbox(1000);
    o.push(chunk(0)).entry.sent = true;
    o.push(chunk(1));
    const { resend } = o.onWelcome(0, false);
    assert.deepEqual(resend.map((e) => [e.chunk, e.data[0]]), [[0, 1]]);
    assert.equal(o.push(chunk(2)).entry.chunk, 1);
  });

  it("compacts its queue without losing order over many chunks", () => {
    const o = new AudioOutbox(50);
    for (let i = 0; i < 5000; i++) o.push(chunk(i % 256, 1));
    const { resend } = o.onWelcome(4950, true);
    assert.deepEqual(resend.map((e) => e.chunk), Array.from({ length: 50 }, (_, i) => 4950 + i));
  });
});

describe("TurnTracker", () => {
  it("follows turns, keeps a bounded number of finished ones, and refuses late events", () => {
    const t = new TurnTracker(2);
    const done = (id: string) => ({ type: "turn.done" as const, seq: 1, turn_id: id, status: "completed", usage: { input_tokens: 0, output_tokens: 0 }, timings: {} });
    for (const id of ["a", "b", "c"]) {
      assert.ok(t.admit({ type: "turn.started", seq: 1, turn_id: id, input: "text" }).accepted);
      assert.ok(t.admit(done(id)).accepted);
    }
    assert.equal(t.get("a"), undefined, "the oldest finished turn was let go");
    assert.equal(t.admit({ type: "token", seq: 1, turn_id: "c", text: "x" }).accepted, false);
    assert.equal(t.admit({ type: "turn.started", seq: 1, turn_id: "d", input: "text" }).accepted, true);
    assert.equal(t.admit({ type: "turn.started", seq: 1, turn_id: "d", input: "text" }).accepted, false);
    assert.deepEqual(t.active().map((x) => x.turnId), ["d"]);
  });

  it("opens a turn it never saw start (resumed from saved state)", () => {
    const t = new TurnTracker();
    const v = t.admit({ type: "token", seq: 9, turn_id: "z", text: "mid" });
    assert.ok(v.accepted && v.turn.input === null && v.turn.text === "mid");
  });
});

describe("CaptionTracker", () => {
  const partial = (segment: number, text: string): CaptionPartialMessage => ({ type: "caption.partial", segment, text, start: 0, end: 1, speaker: null });
  const final = (segment: number, text: string): CaptionFinalMessage => ({ type: "caption.final", seq: 1, segment, text, start: 0, end: 1, speaker: null });

  it("replaces partials per segment and settles them with the final", () => {
    const c = new CaptionTracker();
    c.partial(partial(0, "hel"));
    c.partial(partial(0, "hello wor"));
    c.partial(partial(1, "next"));
    assert.equal(c.text(), "hello wor next");
    assert.ok(c.final(final(0, "Hello world.")));
    assert.equal(c.partial(partial(0, "stale")), false);
    assert.equal(c.final(final(0, "again")), false);
    assert.equal(c.text(), "Hello world. next");
    assert.deepEqual(c.partials.map((p) => p.segment), [1]);
  });

  it("keeps a bounded history of finals and open partials", () => {
    const c = new CaptionTracker(3);
    for (let i = 0; i < 10; i++) c.final(final(i, `s${i}`));
    assert.deepEqual(c.finals.map((f) => f.segment), [7, 8, 9]);
    for (let i = 100; i < 200; i++) c.partial(partial(i, "p"));
    assert.equal(c.partials.length, 64);
    assert.equal(c.partials[0]!.segment, 136);
  });
});

describe("close policy", () => {
  const v = (code: number, more: { goawayAfterMs?: number; lastErrorCode?: string } = {}) =>
    closeVerdict({ code, reason: "", goawayAfterMs: more.goawayAfterMs ?? null, lastErrorCode: more.lastErrorCode ?? null });

  it("maps every close code of PROTOCOL.md", () => {
    assert.deepEqual(v(1000), { kind: "stop", code: null, message: "session ended" });
    assert.deepEqual(v(1001, { goawayAfterMs: 700 }), { kind: "reconnect", delayMs: 700 });
    assert.deepEqual(v(1001), { kind: "reconnect", delayMs: null });
    for (const code of [1006, 1009, 1011, 1012, 4999]) assert.deepEqual(v(code), { kind: "reconnect", delayMs: null });
    assert.equal(v(4001).kind, "stop");
    assert.equal(v(4003).kind, "stop");
    assert.deepEqual(v(4004, { lastErrorCode: "replay_gap" }), {
      kind: "stop",
      code: "replay_gap",
      message: "the session cannot be resumed (resume failed); start a new session",
    });
    assert.deepEqual(v(4008), { kind: "reconnect", delayMs: 0 });
    assert.deepEqual(v(4009, { lastErrorCode: "x" }), { kind: "stop", code: "superseded", message: "superseded by a newer connection" });
    assert.deepEqual(v(4029), { kind: "reconnect", delayMs: null, atLeastMs: 5000 });
    assert.equal(v(4029, { lastErrorCode: "quota_exceeded" }).kind, "stop");
  });

  it("backs off exponentially, jittered within [half, full], capped", () => {
    const policy = { baseMs: 100, maxMs: 1000 };
    assert.deepEqual([0, 1, 2, 3, 4, 50].map((n) => backoffDelay(n, policy, () => 0)), [50, 100, 200, 400, 500, 500]);
    assert.deepEqual([0, 1, 2, 3, 4, 50].map((n) => backoffDelay(n, policy, () => 0.999999)), [100, 200, 400, 800, 1000, 1000]);
  });
});

describe("PhaseMachine", () => {
  it("refuses illegal transitions and stays where it was", () => {
    const m = new PhaseMachine();
    assert.throws(() => m.go("live"), IllegalTransition);
    assert.equal(m.phase, "idle");
    m.go("opening");
    m.go("handshaking");
    m.go("live");
    m.go("closed");
    assert.throws(() => m.go("opening"), IllegalTransition);
    assert.equal(m.phase, "closed");
  });

  it("derives the state an app sees", () => {
    assert.equal(publicState("opening", false, 0, false), "connecting");
    assert.equal(publicState("waiting", false, 1, false), "reconnecting");
    assert.equal(publicState("handshaking", true, 0, false), "reconnecting");
    assert.equal(publicState("live", true, 0, true), "resumed");
    assert.equal(publicState("live", true, 0, false), "connected");
  });
});

describe("Emitter", () => {
  it("delivers typed events, unsubscribes, and survives a throwing listener", () => {
    const failures: unknown[] = [];
    const e = new Emitter<{ a: number; b: string }>((err) => failures.push(err));
    const got: unknown[] = [];
    e.on("a", () => {
      throw new Error("listener bug");
    });
    const off = e.on("a", (n) => got.push(n));
    e.once("b", (s) => got.push(s));
    e.emit("a", 1);
    e.emit("b", "x");
    e.emit("b", "y");
    off();
    e.emit("a", 2);
    assert.deepEqual(got, [1, "x"]);
    assert.equal(failures.length, 2);
  });
});
