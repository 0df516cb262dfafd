// Caption state (PROTOCOL.md, "Server → client"): a caption.partial is replaced by the
// next partial of its segment; a caption.final settles the segment for good, so later
// partials of it (sent before the final, delivered after) are stale.

import type { CaptionFinalMessage, CaptionPartialMessage } from "./messages.js";

const MAX_OPEN_SEGMENTS = 64;

export class CaptionTracker {
  private readonly open = new Map<number, CaptionPartialMessage>();
  private readonly settled: CaptionFinalMessage[] = [];
  // Settled segment numbers, bounded like the finals themselves.
  private readonly settledSegments = new Set<number>();

  constructor(readonly keepFinals = 1000) {}

  /** Finals, oldest first (at most `keepFinals`). */
  get finals(): readonly CaptionFinalMessage[] {
    return this.settled;
  }

  /** Unsettled partials, by segment. */
  get partials(): CaptionPartialMessage[] {
    return [...this.open.values()].sort((a, b) => a.segment - b.segment);
  }

  /** False when the partial is stale: its segment is final already. */
  partial(msg: CaptionPartialMessage): boolean {
    if (this.settledSegments.has(msg.segment)) return false;
    this.open.set(msg.segment, msg);
    // Only a few segments are open at once; a server that never settles them must not
    // grow this without end, so the oldest open partial goes.
    if (this.open.size > MAX_OPEN_SEGMENTS) this.open.delete(Math.min(...this.open.keys()));
    return true;
  }

  /** False for a second final of one segment. */
  final(msg: CaptionFinalMessage): boolean {
    if (this.settledSegments.has(msg.segment)) return false;
    this.open.delete(msg.segment);
    this.settled.push(msg);
    this.settledSegments.add(msg.segment);
    if (this.settled.length > this.keepFinals) {
      const old = this.settled.shift()!;
      this.settledSegments.delete(old.segment);
    }
    return true;
  }

  /** Finals then open partials, as one line of text. */
  text(): string {
    return [...this.settled, ...this.partials]
      .map((c) => c.text.trim())
      .filter((t) => t.length > 0)
      .join(" ");
  }

  reset(): void {
    this.open.clear();
    this.settled.length = 0;
    this.settledSegments.clear();
  }
}
