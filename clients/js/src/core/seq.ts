// Durable event numbering (PROTOCOL.md, "Session lifecycle" 3 and "Resume"): seq runs
// 1, 2, 3, … with no gaps; replays after a resume start at last_seq + 1.

export type SeqVerdict = "next" | "duplicate" | "gap";

export class SeqTracker {
  constructor(private last = 0) {}

  /** The last seq processed: what `ack` and `hello.resume.last_seq` carry. */
  get lastSeq(): number {
    return this.last;
  }

  classify(seq: number): SeqVerdict {
    if (seq <= this.last) return "duplicate";
    return seq === this.last + 1 ? "next" : "gap";
  }

  /** Takes `seq` as processed; only the verdict "next" may be accepted. */
  accept(seq: number): void {
    if (seq !== this.last + 1) throw new RangeError(`seq ${seq} does not follow ${this.last}`);
    this.last = seq;
  }

  reset(last: number): void {
    this.last = last;
  }
}

/**
 * When to send `ack`: after `every` unacknowledged events, or `afterMs` after the first
 * of them, whichever comes first. Acks let the server trim its replay buffer; batching
 * keeps them from doubling the message rate during token streams.
 */
export class AckSchedule {
  private unacked = 0;
  private firstAt: number | null = null;
  private acked = 0;

  constructor(
    readonly every: number,
    readonly afterMs: number,
  ) {
    if (!(every >= 1) || !(afterMs >= 0)) throw new RangeError("ack policy needs every ≥ 1 and afterMs ≥ 0");
  }

  /** Counts one processed event; true when an ack is due at once. */
  note(now: number): boolean {
    this.unacked += 1;
    this.firstAt ??= now;
    return this.unacked >= this.every;
  }

  dueAt(): number | null {
    return this.firstAt === null ? null : this.firstAt + this.afterMs;
  }

  /** The seq to ack now, or null when `lastSeq` was acked already. */
  take(lastSeq: number): number | null {
    this.unacked = 0;
    this.firstAt = null;
    if (lastSeq <= this.acked) return null;
    this.acked = lastSeq;
    return lastSeq;
  }

  /** A new connection: nothing is pending, and the server knows `lastSeq` from hello. */
  reset(lastSeq: number): void {
    this.unacked = 0;
    this.firstAt = null;
    this.acked = lastSeq;
  }
}
