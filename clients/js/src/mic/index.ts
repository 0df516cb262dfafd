// Browser microphone capture (needs the DOM); import from "@parley/client/mic".
export { MicCapture, captureMicrophone, type MicOptions } from "./capture.js";
export { PcmChunker, pcmBytes } from "./pcm.js";
export { PROCESSOR_NAME, processorSource } from "./worklet.js";
