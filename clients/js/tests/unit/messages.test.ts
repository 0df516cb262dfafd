import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseServerMessage, ProtocolViolation, readSeq, type WireMap } from "../../src/core/messages.js";
import { welcomeMap } from "../harness.js";

// One valid example of every server message type, with the fields PROTOCOL.md requires.
// Float fields hold non-integers, so that an integer check on them would show.
const VALID: Record<string, WireMap> = {
  welcome: welcomeMap({ heartbeat_s: 2.5, resume_ttl_s: 60.5 }),
  "speech.started": { seq: 1, at: 1.25 },
  "speech.stopped": { seq: 1, at: 2.5 },
  "caption.partial": { segment: 0, text: "hel", start: 0.25, end: 0.4 },
  "caption.final": { seq: 1, segment: 0, text: "hello", start: 0.1, end: 0.5, speaker: "S1", words: [{ w: "hello", start: 0, end: 0.5, p: 0.9 }] },
  "speaker.merged": { seq: 1, merged: "S2", into: "S1" },
  "turn.started": { seq: 1, turn_id: "t", input: "speech" },
  token: { seq: 1, turn_id: "t", text: "x" },
  "tool.call": { seq: 1, turn_id: "t", call_id: "c", name: "clock", arguments: { tz: "UTC" } },
  "tool.result": { seq: 1, turn_id: "t", call_id: "c", ok: false, error: { code: "timeout", message: "slow" } },
  "turn.done": { seq: 1, turn_id: "t", status: "length", usage: { input_tokens: 1, output_tokens: 2 }, timings: { ttft_ms: 1 } },
  error: { code: "bad_message", message: "m", fatal: false },
  pong: { id: "p", server_time: 3.5 },
  goaway: { reason: "drain", reconnect_after_ms: 100 },
};

// Fields whose absence or wrong type must be rejected.
const REQUIRED: Record<string, string[]> = {
  welcome: ["session_id", "resume_token", "resumed", "last_seq", "audio_next", "heartbeat_s", "resume_ttl_s"],
  "speech.started": ["at"],
  "caption.partial": ["segment", "text", "start", "end"],
  "caption.final": ["segment", "text", "start", "end"],
  "speaker.merged": ["merged", "into"],
  "turn.started": ["turn_id", "input"],
  token: ["turn_id", "text"],
  "tool.call": ["turn_id", "call_id", "name", "arguments"],
  "tool.result": ["turn_id", "call_id", "ok"],
  "turn.done": ["turn_id", "status", "usage", "timings"],
  error: ["code", "message", "fatal"],
  pong: ["server_time"],
  goaway: ["reason", "reconnect_after_ms"],
};

// Values of the wrong kind for a field, by the kind of its valid value.
function wrongFor(good: unknown): unknown[] {
  if (typeof good === "string") return [null, 1, true, [], {}, new Uint8Array(1)];
  if (typeof good === "boolean") return [null, 0, "true", [], {}];
  if (typeof good === "number") {
    const alwaysWrong = [null, "1", true, [], {}, Infinity, NaN];
    return Number.isInteger(good) ? [...alwaysWrong, 1.5, -1] : alwaysWrong;
  }
  return [null, "x", 1, [], new Uint8Array(1)];
}

describe("server message parsing", () => {
  for (const [type, fields] of Object.entries(VALID)) {
    it(`accepts a valid ${type}`, () => {
      const msg = parseServerMessage(type, { type, ...fields }, 1);
      assert.equal(msg.type, type);
    });
  }

  for (const [type, keys] of Object.entries(REQUIRED)) {
    it(`rejects ${type} with a required field missing or of the wrong type`, () => {
      for (const key of keys) {
        const { [key]: _gone, ...rest } = VALID[type]!;
        assert.throws(() => parseServerMessage(type, { type, ...rest }, 1), ProtocolViolation, `${type} without ${key}`);
        for (const bad of wrongFor(VALID[type]![key])) {
          assert.throws(
            () => parseServerMessage(type, { type, ...VALID[type], [key]: bad }, 1),
            ProtocolViolation,
            `${type}.${key} = ${String(bad)}`,
          );
        }
      }
    });
  }

  it("keeps unknown fields out and optional fields typed", () => {
    const msg = parseServerMessage("token", { type: "token", seq: 4, turn_id: "t", text: "x", extra: 1 }, 4);
    assert.deepEqual(msg, { type: "token", seq: 4, turn_id: "t", text: "x" });
    const partial = parseServerMessage("caption.partial", { type: "caption.partial", ...VALID["caption.partial"], speaker: null }, 0);
    assert.equal((partial as { speaker: unknown }).speaker, null);
    assert.throws(() => parseServerMessage("caption.partial", { type: "caption.partial", ...VALID["caption.partial"], speaker: 3 }, 0), ProtocolViolation);
  });

  it("checks every word of a final caption", () => {
    const base = { type: "caption.final", ...VALID["caption.final"] };
    for (const words of ["w", [1], [{ w: "a", start: 0, end: 1 }], [{ w: 1, start: 0, end: 1, p: 1 }]]) {
      assert.throws(() => parseServerMessage("caption.final", { ...base, words }, 1), ProtocolViolation);
    }
  });

  it("checks timings are numbers and usage counts are integers", () => {
    const base = { type: "turn.done", ...VALID["turn.done"] };
    assert.throws(() => parseServerMessage("turn.done", { ...base, timings: { ttft_ms: "1" } }, 1), /timings.ttft_ms/);
    assert.throws(() => parseServerMessage("turn.done", { ...base, usage: { input_tokens: 1.5, output_tokens: 0 } }, 1), /input_tokens/);
    assert.throws(() => parseServerMessage("turn.done", { ...base, timings: { total: Infinity } }, 1), /timings.total/);
  });

  it("accepts an open-ended status and input, for newer servers", () => {
    const msg = parseServerMessage("turn.done", { type: "turn.done", ...VALID["turn.done"], status: "timeout" }, 1);
    assert.equal((msg as { status: string }).status, "timeout");
  });

  it("refuses unknown types", () => {
    assert.throws(() => parseServerMessage("nope", { type: "nope" }, 0), ProtocolViolation);
    assert.throws(() => parseServerMessage("toString", { type: "toString" }, 0), ProtocolViolation);
  });
});

describe("seq reading", () => {
  it("takes positive safe integers and nothing else", () => {
    assert.equal(readSeq({ type: "x", seq: 1 }), 1);
    assert.equal(readSeq({ type: "x" }), undefined);
    for (const bad of [0, -3, 1.5, "2", null, 2 ** 53, NaN, [], {}]) {
      assert.throws(() => readSeq({ type: "x", seq: bad }), ProtocolViolation, String(bad));
    }
  });
});
