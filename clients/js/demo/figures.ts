// The latency panel: every `[data-figure]` element of the page shows one figure of the
// LatencyBook. Redrawn at most once a frame, however many events come.

import { formatSummary, type LatencyBook, type Series } from "./latency.js";
import { h } from "./view.js";

export class FiguresView {
  private readonly cells = new Map<string, HTMLElement>();
  private queued = false;

  constructor(root: ParentNode) {
    for (const el of root.querySelectorAll<HTMLElement>("[data-figure]")) this.cells.set(el.dataset["figure"]!, el);
  }

  clear(): void {
    for (const el of this.cells.values()) el.textContent = "–";
  }

  /** Shows `book` at the next frame. */
  render(book: LatencyBook): void {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.series("connect", book.connect);
      this.series("rtt", book.rtt);
      this.series("ttft", book.ttft);
      this.series("total", book.total);
      this.series("first-token", book.firstToken);
      this.series("partial", book.partial);
      this.series("final", book.final);
      this.set("audio", `${book.audio.seconds.toFixed(1)} s`);
    });
  }

  private series(name: string, series: Series): void {
    const { last, spread } = formatSummary(series.summary());
    this.set(name, last, spread);
  }

  private set(name: string, last: string, spread = ""): void {
    const el = this.cells.get(name);
    if (el === undefined) return;
    el.replaceChildren(last);
    if (spread) el.append(" ", h("small", { class: "muted" }, spread));
  }
}
