// The AudioWorklet processor, as module source text. It is built from PcmChunker's own
// source so that the conversion running in the audio thread is the one the tests run,
// and so that no bundler setup is needed to ship a second file.

import { PcmChunker } from "./pcm.js";

export const PROCESSOR_NAME = "parley-pcm";

/**
 * Source of a worklet module that registers PROCESSOR_NAME. Options
 * (`processorOptions`): `outputRate`, `chunkSamples`. It posts each chunk's
 * ArrayBuffer (transferred), and answers the message "flush" with the last partial
 * chunk (if any) followed by the string "flushed".
 */
export function processorSource(): string {
  return `const PcmChunker = (${PcmChunker.toString()});

class ParleyPcmProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.chunker = new PcmChunker(sampleRate, o.outputRate || 16000, o.chunkSamples || 800);
    this.port.onmessage = (ev) => {
      if (ev.data !== "flush") return;
      const last = this.chunker.flush();
      if (last) this.port.postMessage(last.buffer, [last.buffer]);
      this.port.postMessage("flushed");
    };
  }

  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0) {
      for (const chunk of this.chunker.push(input)) this.port.postMessage(chunk.buffer, [chunk.buffer]);
    }
    return true;
  }
}

registerProcessor(${JSON.stringify(PROCESSOR_NAME)}, ParleyPcmProcessor);
`;
}
