// The latency figures the demo page shows, as plain values: no DOM, no clock of its own
// (every method takes the time), so the figures can be checked without a browser.

const KEEP = 200; // samples per series: enough for a stable median, small for a long session

/** A figure in ms: the last sample, the median of the recent ones, and how many there were. */
export interface Summary {
  last: number;
  median: number;
  count: number;
}

export class Series {
  private readonly recent: number[] = [];
  private total = 0;

  add(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.recent.push(ms);
    if (this.recent.length > KEEP) this.recent.shift();
    this.total += 1;
  }

  summary(): Summary | null {
    const last = this.recent.at(-1);
    if (last === undefined) return null;
    const sorted = [...this.recent].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    return { last, median, count: this.total };
  }
}

/**
 * When each stretch of the session's audio was handed to the client, so that a caption
 * covering audio up to `end` seconds can be timed: its latency is its arrival minus the
 * moment the last of that audio was sent. The session's timeline counts from its first
 * sample (PROTOCOL.md), which is the first byte given to `sent`.
 */
export class AudioTimeline {
  // (audio seconds reached, time it was reached), ascending in both.
  private readonly marks: { endS: number; at: number }[] = [];
  private bytes = 0;

  constructor(
    private readonly bytesPerSecond = 32_000, // 16 kHz mono s16le
    private readonly keepMarks = 6_000, // 5 minutes of 50 ms chunks
  ) {}

  /** Seconds of audio sent so far. */
  get seconds(): number {
    return this.bytes / this.bytesPerSecond;
  }

  sent(byteLength: number, at: number): void {
    if (byteLength <= 0) return;
    this.bytes += byteLength;
    this.marks.push({ endS: this.seconds, at });
    if (this.marks.length > this.keepMarks) this.marks.shift();
  }

  /** The time the audio up to `audioS` had been sent, or null when not (or no longer) known. */
  sentAt(audioS: number): number | null {
    const first = this.marks[0];
    if (first === undefined || audioS > this.seconds + 1e-6) return null;
    // Older than what is kept: unknown rather than wrong.
    if (audioS < first.endS - 0.5) return null;
    let lo = 0;
    let hi = this.marks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.marks[mid]!.endS + 1e-6 >= audioS) hi = mid;
      else lo = mid + 1;
    }
    return this.marks[lo]!.at;
  }

  reset(): void {
    this.marks.length = 0;
    this.bytes = 0;
  }
}

/** What a finished turn reported (`turn.done.timings`), in ms; absent keys stay absent. */
export interface TurnTimings {
  ttft_ms?: number;
  total_ms?: number;
  queue_ms?: number;
  tokens_per_s?: number;
}

export function turnTimings(raw: Record<string, number>): TurnTimings {
  const out: TurnTimings = {};
  for (const key of ["ttft_ms", "total_ms", "queue_ms", "tokens_per_s"] as const) {
    const value = raw[key];
    if (typeof value === "number" && Number.isFinite(value)) out[key] = value;
  }
  return out;
}

/** Every figure of one page's sessions. */
export class LatencyBook {
  /** From asking for a token to `welcome`. */
  readonly connect = new Series();
  readonly rtt = new Series();
  /** The server's own figures, from `turn.done.timings`. */
  readonly ttft = new Series();
  readonly total = new Series();
  /** Seen from the page: sending a text to its turn's first token. */
  readonly firstToken = new Series();
  readonly partial = new Series();
  readonly final = new Series();
  readonly audio = new AudioTimeline();
  private readonly textsSent = new Map<string, number>();
  private readonly turnInput = new Map<string, string>();

  textSent(id: string, at: number): void {
    this.textsSent.set(id, at);
    if (this.textsSent.size > 64) this.textsSent.delete(this.textsSent.keys().next().value as string);
  }

  turnStarted(turnId: string, inputId: string | undefined): void {
    if (inputId !== undefined) this.turnInput.set(turnId, inputId);
  }

  /** The first token of a turn arrived at `at`. */
  firstTokenOf(turnId: string, at: number): void {
    const inputId = this.turnInput.get(turnId);
    const sentAt = inputId === undefined ? undefined : this.textsSent.get(inputId);
    if (sentAt !== undefined) this.firstToken.add(at - sentAt);
    this.turnInput.delete(turnId);
    if (inputId !== undefined) this.textsSent.delete(inputId);
  }

  turnDone(timings: TurnTimings): void {
    if (timings.ttft_ms !== undefined) this.ttft.add(timings.ttft_ms);
    if (timings.total_ms !== undefined) this.total.add(timings.total_ms);
  }

  /** A caption covering audio up to `endS` arrived at `at`. */
  caption(kind: "partial" | "final", endS: number, at: number): void {
    const sentAt = this.audio.sentAt(endS);
    if (sentAt !== null) (kind === "partial" ? this.partial : this.final).add(at - sentAt);
  }
}

/** "123 ms", "1.23 s": a figure for people. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** The last figure, and the median with the count once there are several. */
export function formatSummary(s: Summary | null): { last: string; spread: string } {
  if (s === null) return { last: "–", spread: "" };
  return { last: formatMs(s.last), spread: s.count === 1 ? "" : `median ${formatMs(s.median)} · n=${s.count}` };
}
