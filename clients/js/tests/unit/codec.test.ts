import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decode, encode } from "@msgpack/msgpack";
import { base64Encode, codecFor, DecodeError, JsonCodec, MsgpackCodec } from "../../src/core/codec.js";
import { prng } from "../harness.js";

describe("msgpack codec", () => {
  const codec = new MsgpackCodec();

  it("writes audio bytes as msgpack bin", () => {
    const frame = codec.encode({ type: "audio", data: new Uint8Array([1, 2, 3]), chunk: 4 }) as Uint8Array;
    // fixmap(3) "type" "audio" "data" then 0xc4 (bin 8) of length 3.
    const at = Buffer.from(frame).indexOf(Buffer.from([0xc4, 3, 1, 2, 3]));
    assert.ok(at > 0);
    assert.deepEqual(decode(frame), { type: "audio", data: new Uint8Array([1, 2, 3]), chunk: 4 });
  });

  it("leaves out absent optional fields", () => {
    assert.deepEqual(decode(codec.encode({ type: "cancel" }) as Uint8Array), { type: "cancel" });
  });

  it("decodes a map with a string type", () => {
    assert.deepEqual(codec.decode(encode({ type: "pong", id: 1, server_time: 2 })), { type: "pong", id: 1, server_time: 2 });
  });

  it("rejects every proper prefix of a valid frame", () => {
    const full = encode({ type: "token", seq: 12, turn_id: "t1", text: "héllo" });
    for (let n = 0; n < full.length; n++) {
      assert.throws(() => codec.decode(full.subarray(0, n)), DecodeError, `prefix of ${n} bytes`);
    }
  });

  it("rejects text frames, non-maps, and maps without a string type", () => {
    for (const bad of ["{}", encode([1]), encode(null), encode(3), encode({ type: 3 }), encode({}), encode(new Uint8Array(2))]) {
      assert.throws(() => codec.decode(bad), DecodeError);
    }
  });

  it("rejects trailing bytes after the map", () => {
    const two = new Uint8Array([...encode({ type: "a" }), ...encode({ type: "b" })]);
    assert.throws(() => codec.decode(two), DecodeError);
  });

  it("throws only DecodeError on random bytes", () => {
    const rnd = prng(1);
    for (let i = 0; i < 3000; i++) {
      const bytes = new Uint8Array(1 + Math.floor(rnd() * 24));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rnd() * 256);
      try {
        codec.decode(bytes);
      } catch (err) {
        assert.ok(err instanceof DecodeError, String(err));
      }
    }
  });
});

describe("json codec", () => {
  it("writes audio as base64 with its chunk index", () => {
    const frame = new JsonCodec().encode({ type: "audio", data: new Uint8Array([0, 255, 7]), chunk: 0 });
    assert.equal(frame, '{"type":"audio","data":"AP8H","chunk":0}');
  });

  it("writes an audio message without chunk as a binary frame only when asked to", () => {
    const data = new Uint8Array([5, 6]);
    assert.equal(new JsonCodec(true).encode({ type: "audio", data }), data);
    assert.equal(new JsonCodec(true).encode({ type: "audio", data, chunk: 3 }), '{"type":"audio","data":"BQY=","chunk":3}');
    assert.equal(new JsonCodec(false).encode({ type: "audio", data }), '{"type":"audio","data":"BQY="}');
  });

  it("encodes base64 like Node for every length and byte", () => {
    const rnd = prng(2);
    for (let n = 0; n < 70; n++) {
      const bytes = new Uint8Array(n);
      for (let j = 0; j < n; j++) bytes[j] = Math.floor(rnd() * 256);
      assert.equal(base64Encode(bytes), Buffer.from(bytes).toString("base64"));
    }
  });

  it("rejects binary frames, broken JSON, non-objects and missing types", () => {
    const codec = new JsonCodec();
    for (const bad of [new Uint8Array([123, 125]), "", "{", '{"type":"a"', "[]", "null", "1", '"s"', '{"type":null}', "{}"]) {
      assert.throws(() => codec.decode(bad), DecodeError, String(bad));
    }
    const full = '{"type":"token","seq":1,"turn_id":"t","text":"x"}';
    for (let n = 0; n < full.length; n++) assert.throws(() => codec.decode(full.slice(0, n)), DecodeError);
  });

  it("keeps a __proto__ key as plain data", () => {
    const m = new JsonCodec().decode('{"type":"x","__proto__":{"polluted":1}}');
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
    assert.equal(m["type"], "x");
  });
});

describe("codecFor", () => {
  it("picks the codec of the negotiated sub-protocol, JSON when none", () => {
    assert.equal(codecFor("parley.v1.msgpack").subprotocol, "parley.v1.msgpack");
    assert.equal(codecFor("parley.v1.json").subprotocol, "parley.v1.json");
    assert.equal(codecFor("").subprotocol, "parley.v1.json");
    assert.equal(codecFor("parley.v1.json", true).binaryAudio, true);
  });
});
