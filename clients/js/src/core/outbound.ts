// Everything that goes to the server, in order: socket actions, encoded frames, audio
// (numbered and kept for re-sending), and the messages that wait for a connection.

import { AudioOutbox, type AudioEntry, type AudioGap } from "./audio-outbox.js";
import type { Codec, Frame } from "./codec.js";
import type { ClientMessage } from "./messages.js";

/** What the socket shell must do for the core. */
export type Action =
  | { type: "open" }
  | { type: "send"; frame: Frame }
  | { type: "close"; code: number; reason: string };

/** The app used the client wrongly: after close, with oversize input, or too fast while offline. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export class Outbound {
  readonly audio: AudioOutbox;
  private codec: Codec | null = null;
  private actions: Action[] = [];
  private queued: ClientMessage[] = [];
  private expectChunk = 0; // the chunk index the server counts next on this connection

  constructor(
    audioMaxBytes: number,
    readonly maxQueued: number,
  ) {
    this.audio = new AudioOutbox(audioMaxBytes);
  }

  take(): Action[] {
    const out = this.actions;
    this.actions = [];
    return out;
  }

  open(): void {
    this.codec = null;
    this.actions.push({ type: "open" });
  }

  /** The socket is open and speaks `codec`. */
  attach(codec: Codec): void {
    this.codec = codec;
  }

  /** The connection is gone. */
  detach(): void {
    this.codec = null;
  }

  /** Asks the shell to close the socket, whether it is open or still opening. */
  abort(code: number, reason: string): void {
    this.actions.push({ type: "close", code, reason });
    this.codec = null;
  }

  send(msg: ClientMessage): void {
    if (this.codec === null) throw new Error(`no connection to send ${msg.type} on`);
    this.actions.push({ type: "send", frame: this.codec.encode(msg) });
  }

  /** Sends `msg` when `live`, else keeps it (bounded) for the next welcome. */
  control(msg: ClientMessage, live: boolean): void {
    if (live) return this.send(msg);
    if (this.queued.length >= this.maxQueued) {
      throw new UsageError(`${this.queued.length} messages already wait for a connection`);
    }
    this.queued.push(msg);
  }

  /** Numbers and keeps `data`, sending it when `live`; returns how many unsent chunks the bound dropped. */
  pushAudio(data: Uint8Array, live: boolean): number {
    const { entry, droppedUnsent } = this.audio.push(data);
    if (live) this.sendChunk(entry);
    return droppedUnsent;
  }

  /**
   * After a welcome: audio from `audioNext` first, then what waited, in the order the
   * user produced them as far as two queues allow. Returns the audio the server will
   * never get.
   */
  welcomed(audioNext: number, resumed: boolean): AudioGap | null {
    const { resend, gap } = this.audio.onWelcome(audioNext, resumed);
    this.expectChunk = audioNext;
    for (const entry of resend) this.sendChunk(entry);
    const queued = this.queued;
    this.queued = [];
    for (const msg of queued) this.send(msg);
    return gap;
  }

  private sendChunk(entry: AudioEntry): void {
    // A bare binary frame carries no index: send one only where the server's count is
    // sure to match, i.e. right after the previous chunk.
    const implicit = this.codec!.binaryAudio && entry.chunk === this.expectChunk;
    this.expectChunk = entry.chunk + 1;
    entry.sent = true;
    this.send(implicit ? { type: "audio", data: entry.data } : { type: "audio", data: entry.data, chunk: entry.chunk });
  }
}
