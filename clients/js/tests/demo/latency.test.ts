// The demo page's latency figures, told what happened and when.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AudioTimeline, formatMs, formatSummary, LatencyBook, Series, turnTimings } from "../../demo/latency.js";

describe("a series of figures", () => {
  it("is empty until the first sample", () => {
    assert.equal(new Series().summary(), null);
    assert.deepEqual(formatSummary(null), { last: "–", spread: "" });
  });

  it("keeps the last sample, the median and the count", () => {
    const s = new Series();
    for (const ms of [30, 10, 20, 1000]) s.add(ms);
    assert.deepEqual(s.summary(), { last: 1000, median: 25, count: 4 });
    assert.deepEqual(formatSummary(s.summary()), { last: "1.00 s", spread: "median 25 ms · n=4" });
  });

  it("ignores samples that are not times", () => {
    const s = new Series();
    for (const ms of [NaN, -1, Infinity]) s.add(ms);
    assert.equal(s.summary(), null);
  });

  it("bounds its memory but keeps counting", () => {
    const s = new Series();
    for (let i = 0; i < 1000; i++) s.add(i);
    const summary = s.summary()!;
    assert.equal(summary.count, 1000);
    assert.equal(summary.median, 899.5); // of the last 200
  });
});

describe("the audio timeline", () => {
  it("says when the audio up to a time had been sent", () => {
    const t = new AudioTimeline();
    t.sent(1600, 100); // 0.00–0.05 s sent at 100 ms
    t.sent(1600, 150); // 0.05–0.10 s
    t.sent(1600, 200); // 0.10–0.15 s
    assert.equal(t.seconds, 0.15);
    assert.equal(t.sentAt(0), 100);
    assert.equal(t.sentAt(0.05), 100);
    assert.equal(t.sentAt(0.07), 150);
    assert.equal(t.sentAt(0.15), 200);
  });

  it("does not know audio that was never sent, or is too old to be kept", () => {
    const t = new AudioTimeline(32_000, 2);
    assert.equal(t.sentAt(0), null);
    for (let i = 0; i < 40; i++) t.sent(1600, i * 50); // 2 s, only the last 2 marks kept
    assert.equal(t.sentAt(2.5), null);
    assert.equal(t.sentAt(1.0), null);
    assert.equal(t.sentAt(2.0), 1950);
  });

  it("starts again after a reset, and ignores empty chunks", () => {
    const t = new AudioTimeline();
    t.sent(3200, 10);
    t.reset();
    t.sent(0, 20);
    assert.equal(t.seconds, 0);
    assert.equal(t.sentAt(0), null);
  });
});

describe("the page's latency book", () => {
  it("times a text to its turn's first token, once", () => {
    const book = new LatencyBook();
    book.textSent("m1", 1000);
    book.turnStarted("t1", "m1");
    book.firstTokenOf("t1", 1240);
    book.firstTokenOf("t1", 1300); // not a first token any more: no second sample
    assert.deepEqual(book.firstToken.summary(), { last: 240, median: 240, count: 1 });
  });

  it("cannot time turns it did not start (spoken turns)", () => {
    const book = new LatencyBook();
    book.turnStarted("t9", undefined);
    book.firstTokenOf("t9", 50);
    assert.equal(book.firstToken.summary(), null);
  });

  it("takes the server's turn timings, ignoring keys it does not know and values that are not numbers", () => {
    const book = new LatencyBook();
    const timings = turnTimings({ ttft_ms: 210.5, total_ms: 1900, queue_ms: 3, tokens_per_s: 40, later_ms: 1, bad: NaN });
    assert.deepEqual(timings, { ttft_ms: 210.5, total_ms: 1900, queue_ms: 3, tokens_per_s: 40 });
    book.turnDone(timings);
    book.turnDone(turnTimings({}));
    assert.equal(book.ttft.summary()?.last, 210.5);
    assert.equal(book.total.summary()?.count, 1);
  });

  it("times captions from the audio they cover", () => {
    const book = new LatencyBook();
    for (let i = 0; i < 20; i++) book.audio.sent(1600, 1000 + i * 50); // 1 s of audio
    book.caption("partial", 0.5, 1700); // audio to 0.5 s was sent at 1450
    book.caption("final", 1.0, 2400); // audio to 1.0 s was sent at 1950
    book.caption("final", 3.0, 2500); // beyond what was sent: not timed
    assert.equal(book.partial.summary()?.last, 250);
    assert.deepEqual(book.final.summary(), { last: 450, median: 450, count: 1 });
  });
});

describe("figures for people", () => {
  it("shows ms below a second and seconds above", () => {
    assert.equal(formatMs(0.4), "0 ms");
    assert.equal(formatMs(999.4), "999 ms");
    assert.equal(formatMs(1234), "1.23 s");
    assert.equal(formatMs(65_000), "65.0 s");
  });
});
