import assert from "node:assert/strict";
import { describe, it } from "node:test";
import vm from "node:vm";
import { PcmChunker, pcmBytes } from "../../src/mic/pcm.js";
import { PROCESSOR_NAME, processorSource } from "../../src/mic/worklet.js";

function sine(freq: number, rate: number, seconds: number, amp = 0.5): Float32Array {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = amp * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

function samples(chunks: Uint8Array[]): number[] {
  const out: number[] = [];
  for (const c of chunks) {
    const view = new DataView(c.buffer, c.byteOffset, c.byteLength);
    for (let i = 0; i < c.byteLength; i += 2) out.push(view.getInt16(i, true) / 32768);
  }
  return out;
}

function rms(xs: number[]): number {
  return Math.sqrt(xs.reduce((s, x) => s + x * x, 0) / xs.length);
}

/** Feeds `signal` in blocks of `block` samples; with `flush`, the last partial chunk too. */
function run(c: PcmChunker, signal: Float32Array, block: number, flush = true): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < signal.length; i += block) out.push(...c.push([signal.subarray(i, i + block)]));
  const last = flush ? c.flush() : null;
  if (last !== null) out.push(last);
  return out;
}

describe("PcmChunker", () => {
  it("passes 16 kHz through as s16le, clipped, in exact chunks", () => {
    const c = new PcmChunker(16000, 16000, 4);
    const chunks = c.push([new Float32Array([0, 0.5, -0.5, 1, -1, 2, -2, 0.25, 0.125])]);
    assert.deepEqual(chunks.map((x) => x.byteLength), [8, 8]);
    const view = new DataView(chunks[0]!.buffer);
    assert.deepEqual([0, 2, 4, 6].map((i) => view.getInt16(i, true)), [0, 16384, -16384, 32767]);
    assert.deepEqual(Array.from(c.flush()!), [0, 16]); // 0.125 → 4096 = 0x1000, little-endian
    assert.equal(c.flush(), null);
  });

  it("resamples 48 kHz speech-band audio to 16 kHz keeping pitch and level", () => {
    const c = new PcmChunker(48000, 16000, 800);
    const out = samples(run(c, sine(440, 48000, 1), 128));
    assert.ok(out.length >= 15_900 && out.length <= 16_000, String(out.length));
    const body = out.slice(100, 15_800);
    let crossings = 0;
    for (let i = 1; i < body.length; i++) if (body[i - 1]! < 0 && body[i]! >= 0) crossings += 1;
    const hz = (crossings * 16000) / body.length;
    assert.ok(Math.abs(hz - 440) < 3, `${hz} Hz`);
    assert.ok(Math.abs(rms(body) - 0.5 / Math.SQRT2) < 0.01, `rms ${rms(body)}`);
  });

  it("filters what would fold over: a 12 kHz tone at 48 kHz nearly vanishes at 16 kHz", () => {
    const c = new PcmChunker(48000, 16000, 800);
    const out = samples(run(c, sine(12000, 48000, 0.5), 128)).slice(100);
    assert.ok(rms(out) < 0.02, `rms ${rms(out)}`);
  });

  it("handles ratios that are not whole numbers (44.1 kHz)", () => {
    const c = new PcmChunker(44100, 16000, 160);
    const out = samples(run(c, sine(1000, 44100, 1), 441)).slice(100, 15_800);
    let crossings = 0;
    for (let i = 1; i < out.length; i++) if (out[i - 1]! < 0 && out[i]! >= 0) crossings += 1;
    assert.ok(Math.abs((crossings * 16000) / out.length - 1000) < 5);
    assert.ok(Math.abs(rms(out) - 0.5 / Math.SQRT2) < 0.01);
  });

  it("gives the same output whatever the block sizes", () => {
    const signal = sine(300, 48000, 0.3);
    const whole = samples(run(new PcmChunker(48000, 16000, 320), signal, signal.length));
    for (const block of [1, 7, 128, 1000]) {
      assert.deepEqual(samples(run(new PcmChunker(48000, 16000, 320), signal, block)), whole, `block ${block}`);
    }
  });

  it("mixes channels to mono", () => {
    const c = new PcmChunker(16000, 16000, 2);
    const [chunk] = c.push([new Float32Array([0.5, 1]), new Float32Array([-0.5, 0])]);
    const view = new DataView(chunk!.buffer);
    assert.deepEqual([view.getInt16(0, true), view.getInt16(2, true)], [0, 16384]);
    assert.deepEqual(c.push([]), []);
  });

  it("refuses nonsense rates", () => {
    assert.throws(() => new PcmChunker(0), RangeError);
    assert.throws(() => new PcmChunker(48000, 16000, 0), RangeError);
    assert.equal(pcmBytes(50), 1600);
  });
});

describe("worklet processor source", () => {
  // A stand-in for AudioWorkletGlobalScope, which only browsers have: the processor's
  // real source runs in it, and its output must match PcmChunker's.
  function load(rate: number) {
    const posted: unknown[] = [];
    type Processor = { process(i: Float32Array[][]): boolean; port: { onmessage: ((e: { data: unknown }) => void) | null } };
    const found: { name: string; ctor: new (o: unknown) => Processor }[] = [];
    class AudioWorkletProcessor {
      port = { onmessage: null as ((e: { data: unknown }) => void) | null, postMessage: (m: unknown) => posted.push(m) };
    }
    const scope = {
      sampleRate: rate,
      AudioWorkletProcessor,
      registerProcessor: (name: string, ctor: new (o: unknown) => Processor) => found.push({ name, ctor }),
      Math,
      Float32Array,
      DataView,
      ArrayBuffer,
      Uint8Array,
      RangeError,
    };
    vm.runInNewContext(processorSource(), scope);
    assert.equal(found.length, 1);
    return { registered: found[0]!, posted };
  }

  it("registers a processor that posts the same chunks PcmChunker makes, then flushes", () => {
    const { registered, posted } = load(48000);
    assert.equal(registered.name, PROCESSOR_NAME);
    const proc = new registered.ctor({ processorOptions: { outputRate: 16000, chunkSamples: 320 } });
    const signal = sine(500, 48000, 0.1);
    for (let i = 0; i < signal.length; i += 128) assert.equal(proc.process([[signal.subarray(i, i + 128)]]), true);
    proc.process([]);
    proc.port.onmessage!({ data: "flush" });
    assert.equal(posted.at(-1), "flushed");
    const bufs = posted.slice(0, -1) as ArrayBuffer[];
    assert.ok(bufs.every((b) => b.constructor.name === "ArrayBuffer"));
    const expected = new PcmChunker(48000, 16000, 320);
    const want = run(expected, signal, 128);
    assert.deepEqual(bufs.map((b) => Array.from(new Uint8Array(b))), want.map((c) => Array.from(c)));
  });
});
