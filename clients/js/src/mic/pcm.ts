// Microphone samples to protocol audio: mono, resampled to 16 kHz, PCM s16le, cut into
// fixed chunks. The class is self-contained on purpose (no imports, no outside names):
// its source text is also the heart of the AudioWorklet processor (see worklet.ts).

/**
 * Streaming converter. `push` takes one block of float samples per channel (any block
 * size, e.g. the worklet's 128 frames) and returns the chunks completed by it, each
 * `chunkSamples` samples of little-endian 16-bit PCM.
 *
 * Resampling is windowed-sinc interpolation (a Hann window over 2 × halfTaps input
 * samples) with its cutoff below the output Nyquist, so a 48 kHz voice does not fold
 * 8–24 kHz content into the band ASR listens to. Fractional positions are rounded to
 * one of `phases` precomputed filters.
 */
export class PcmChunker {
  readonly step: number;
  private readonly halfTaps: number;
  private readonly phases: number;
  private readonly filters: Float32Array[];
  private history: Float32Array;
  private historyStart = 0; // stream index of history[0]
  private historyLength = 0;
  private position = 0; // stream position (in input samples) of the next output sample
  private chunk: DataView;
  private chunkFill = 0;

  constructor(
    readonly inputRate: number,
    readonly outputRate = 16000,
    readonly chunkSamples = 800,
    halfTaps = 16,
    phases = 64,
  ) {
    if (!(inputRate > 0) || !(outputRate > 0) || !(chunkSamples >= 1)) {
      throw new RangeError("PcmChunker needs positive rates and chunk size");
    }
    this.step = inputRate / outputRate;
    this.halfTaps = inputRate === outputRate ? 0 : halfTaps;
    this.phases = phases;
    this.filters = [];
    // Cutoff as a fraction of the input Nyquist: 90 % of the lower of the two.
    const cutoff = 0.9 * Math.min(1, outputRate / inputRate);
    for (let p = 0; p <= phases && this.halfTaps > 0; p++) {
      const frac = p / phases;
      const taps = new Float32Array(2 * this.halfTaps);
      let sum = 0;
      for (let k = 0; k < taps.length; k++) {
        const d = k - (this.halfTaps - 1) - frac; // distance from the output position
        const x = Math.PI * cutoff * d;
        const sinc = d === 0 ? 1 : Math.sin(x) / x;
        const window = 0.5 + 0.5 * Math.cos((Math.PI * d) / this.halfTaps);
        taps[k] = sinc * window;
        sum += taps[k]!;
      }
      for (let k = 0; k < taps.length; k++) taps[k]! /= sum; // unity gain at DC
      this.filters.push(taps);
    }
    this.history = new Float32Array(4096);
    this.chunk = new DataView(new ArrayBuffer(chunkSamples * 2));
  }

  /** Mixes `channels` to mono and returns the chunks completed, as PCM s16le bytes. */
  push(channels: Float32Array[]): Uint8Array[] {
    const first = channels[0];
    if (first === undefined || first.length === 0) return [];
    const mono = new Float32Array(first.length);
    for (const ch of channels) for (let i = 0; i < mono.length; i++) mono[i]! += ch[i] ?? 0;
    if (channels.length > 1) for (let i = 0; i < mono.length; i++) mono[i]! /= channels.length;
    this.append(mono);

    const out: Uint8Array[] = [];
    const ht = this.halfTaps;
    const end = this.historyStart + this.historyLength; // one past the last input sample
    while (this.position + ht < end) {
      const base = Math.floor(this.position);
      let y: number;
      if (ht === 0) {
        y = this.history[base - this.historyStart]!;
      } else {
        const taps = this.filters[Math.round((this.position - base) * this.phases)]!;
        y = 0;
        for (let k = 0; k < taps.length; k++) {
          const i = base - (ht - 1) + k - this.historyStart;
          if (i >= 0) y += taps[k]! * this.history[i]!;
        }
      }
      this.position += this.step;
      const s = Math.max(-1, Math.min(1, y));
      this.chunk.setInt16(this.chunkFill * 2, Math.round(s < 0 ? s * 0x8000 : s * 0x7fff), true);
      this.chunkFill += 1;
      if (this.chunkFill === this.chunkSamples) {
        out.push(new Uint8Array(this.chunk.buffer));
        this.chunk = new DataView(new ArrayBuffer(this.chunkSamples * 2));
        this.chunkFill = 0;
      }
    }
    this.trim();
    return out;
  }

  /** The partly filled chunk, if any (at the end of capture). */
  flush(): Uint8Array | null {
    if (this.chunkFill === 0) return null;
    const out = new Uint8Array(this.chunk.buffer.slice(0, this.chunkFill * 2));
    this.chunkFill = 0;
    return out;
  }

  private append(mono: Float32Array): void {
    const need = this.historyLength + mono.length;
    if (need > this.history.length) {
      const grown = new Float32Array(Math.max(need, this.history.length * 2));
      grown.set(this.history.subarray(0, this.historyLength));
      this.history = grown;
    }
    this.history.set(mono, this.historyLength);
    this.historyLength += mono.length;
  }

  // Keeps only the input the next output samples still reach back to.
  private trim(): void {
    const keepFrom = Math.floor(this.position) - this.halfTaps;
    const drop = Math.min(this.historyLength, keepFrom - this.historyStart);
    if (drop <= 0) return;
    this.history.copyWithin(0, drop, this.historyLength);
    this.historyLength -= drop;
    this.historyStart += drop;
  }
}

/** Bytes of `ms` milliseconds of 16-bit mono audio at `rate`. */
export function pcmBytes(ms: number, rate = 16000): number {
  return Math.round((rate * ms) / 1000) * 2;
}
