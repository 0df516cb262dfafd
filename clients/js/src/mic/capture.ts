// Browser microphone capture: getUserMedia → AudioWorklet (PcmChunker) → 16 kHz mono
// PCM s16le chunks on the main thread. While the connection is down the chunks go on
// into ParleyClient.sendAudio, whose bounded buffer (audioBufferMs, 30 s by default)
// keeps them for the resume; past the bound the oldest audio is dropped and reported.

import { PROCESSOR_NAME, processorSource } from "./worklet.js";

export interface MicOptions {
  /** Chunk length in ms (default 50; 20–100 is sensible). */
  chunkMs?: number;
  /** Output rate (default 16 000, what the protocol's default session config says). */
  outputRate?: number;
  /** Extra constraints for getUserMedia's audio track. */
  constraints?: MediaTrackConstraints;
  /** An AudioContext to use; by default one is created and closed with the capture. */
  audioContext?: AudioContext;
  /** Where to load the processor from, instead of a Blob URL (for pages whose CSP forbids blob:). */
  workletUrl?: string;
}

const FLUSH_WAIT_MS = 250;

export class MicCapture {
  private stopped = false;

  private constructor(
    private readonly context: AudioContext,
    private readonly ownsContext: boolean,
    private readonly stream: MediaStream,
    private readonly source: MediaStreamAudioSourceNode,
    private readonly node: AudioWorkletNode,
  ) {}

  /** The device's rate, before resampling. */
  get inputRate(): number {
    return this.context.sampleRate;
  }

  /** Asks for the microphone and calls `onChunk` with each PCM chunk. Call from a user gesture. */
  static async start(onChunk: (pcm: Uint8Array) => void, options: MicOptions = {}): Promise<MicCapture> {
    const outputRate = options.outputRate ?? 16000;
    const chunkSamples = Math.max(1, Math.round((outputRate * (options.chunkMs ?? 50)) / 1000));
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true, ...options.constraints },
    });
    const ownsContext = options.audioContext === undefined;
    const context = options.audioContext ?? new AudioContext();
    try {
      const url = options.workletUrl ?? URL.createObjectURL(new Blob([processorSource()], { type: "text/javascript" }));
      try {
        await context.audioWorklet.addModule(url);
      } finally {
        if (options.workletUrl === undefined) URL.revokeObjectURL(url);
      }
      const source = context.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(context, PROCESSOR_NAME, {
        numberOfInputs: 1,
        numberOfOutputs: 0,
        processorOptions: { outputRate, chunkSamples },
      });
      const capture = new MicCapture(context, ownsContext, stream, source, node);
      node.port.onmessage = (ev: MessageEvent) => {
        if (ev.data instanceof ArrayBuffer) onChunk(new Uint8Array(ev.data));
        else if (ev.data === "flushed") capture.flushed?.();
      };
      source.connect(node);
      await context.resume();
      return capture;
    } catch (err) {
      for (const track of stream.getTracks()) track.stop();
      if (ownsContext) await context.close();
      throw err;
    }
  }

  private flushed: (() => void) | undefined;

  /** Stops capture, delivering the last partial chunk first. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.source.disconnect();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, FLUSH_WAIT_MS);
      this.flushed = () => {
        clearTimeout(timer);
        resolve();
      };
      this.node.port.postMessage("flush");
    });
    this.node.port.onmessage = null;
    this.node.disconnect();
    for (const track of this.stream.getTracks()) track.stop();
    if (this.ownsContext) await this.context.close();
  }
}

/** Captures the microphone into `client.sendAudio` (a ParleyClient, or anything alike). */
export function captureMicrophone(client: { sendAudio(pcm: Uint8Array): void }, options: MicOptions = {}): Promise<MicCapture> {
  return MicCapture.start((pcm) => client.sendAudio(pcm), options);
}
