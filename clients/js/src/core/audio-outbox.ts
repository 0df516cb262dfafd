// Outgoing audio and its insurance against a dropped connection (PROTOCOL.md, "Resume",
// Audio). Every chunk gets the next index. The server confirms audio only in
// `welcome.audio_next`, so the last `maxBytes` of audio stay here, sent or not, and a
// resume re-sends them from `audio_next`. When the bound is reached the oldest chunk
// goes; if the server never got it, the next welcome shows a gap, reported to the app
// (and by the server as `audio_gap`).

export interface AudioEntry {
  readonly chunk: number;
  readonly data: Uint8Array;
  sent: boolean;
}

export interface AudioGap {
  /** First chunk index the server will never receive. */
  from: number;
  /** One past the last. */
  to: number;
}

export interface AudioStats {
  bufferedChunks: number;
  bufferedBytes: number;
  nextChunk: number;
  /** Chunks dropped by the bound before any connection took them. */
  droppedUnsent: number;
}

export class AudioOutbox {
  // A queue as array + head: shifting a long array per chunk would be quadratic.
  private entries: AudioEntry[] = [];
  private head = 0;
  private bytes = 0;
  private next = 0;
  private dropped = 0;

  constructor(readonly maxBytes: number) {
    if (!(maxBytes > 0)) throw new RangeError("audio buffer bound must be > 0 bytes");
  }

  get stats(): AudioStats {
    return {
      bufferedChunks: this.entries.length - this.head,
      bufferedBytes: this.bytes,
      nextChunk: this.next,
      droppedUnsent: this.dropped,
    };
  }

  /** Numbers and keeps `data`; returns the entry and how many unsent chunks the bound dropped. */
  push(data: Uint8Array): { entry: AudioEntry; droppedUnsent: number } {
    const entry: AudioEntry = { chunk: this.next, data, sent: false };
    this.next += 1;
    this.entries.push(entry);
    this.bytes += data.byteLength;
    let droppedUnsent = 0;
    // The newest chunk always stays, even when it alone exceeds the bound.
    while (this.bytes > this.maxBytes && this.entries.length - this.head > 1) {
      const old = this.shift();
      if (!old.sent) droppedUnsent += 1;
    }
    this.dropped += droppedUnsent;
    return { entry, droppedUnsent };
  }

  /**
   * Applies a `welcome`: the chunks to send now, in order, and the gap the server will
   * see. A resumed session continues its numbering from `audioNext`; a fresh one
   * renumbers what no connection took and forgets the rest (it was the old session's).
   */
  onWelcome(audioNext: number, resumed: boolean): { resend: AudioEntry[]; gap: AudioGap | null } {
    if (!resumed) {
      const unsent = this.live().filter((e) => !e.sent);
      this.clear();
      this.next = audioNext;
      for (const e of unsent) this.push(e.data);
      return { resend: this.live(), gap: null };
    }
    while (this.head < this.entries.length && this.entries[this.head]!.chunk < audioNext) this.shift();
    const firstKept = this.head < this.entries.length ? this.entries[this.head]!.chunk : this.next;
    const gap = audioNext < firstKept ? { from: audioNext, to: firstKept } : null;
    // A client restored from saved state has no audio yet: continue where the server is.
    if (audioNext > this.next) this.next = audioNext;
    const resend = this.live();
    for (const e of resend) e.sent = false;
    return { resend, gap };
  }

  private live(): AudioEntry[] {
    return this.entries.slice(this.head);
  }

  private shift(): AudioEntry {
    const old = this.entries[this.head]!;
    this.head += 1;
    this.bytes -= old.data.byteLength;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return old;
  }

  private clear(): void {
    this.entries = [];
    this.head = 0;
    this.bytes = 0;
  }
}
