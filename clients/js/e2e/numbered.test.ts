// The demo page in headless Chromium against a server running the numbered test
// pipeline (tests/support/numbered.py), whose events are known in advance: the page's
// rendered transcript can be compared with them item by item. The page reaches the
// server through a relay the test can cut, as a lost network would.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { numberedConfig, ServerProcess } from "../tests/integration/server.js";
import { launch, screenshot, speechWav, type Browser } from "./browser.js";
import { connect, figure, lastTurn, loggedErrors, openDemo, say, shownCaptions, states, until } from "./page.js";
import { CuttableProxy } from "./proxy.js";

const TOKENS = 400; // "tokens 400 10": four seconds of numbered deltas "0," … "399,"
const FINALS = 200; // "count 200 20": four seconds of captions "0 <time>" … "199 <time>"

/** A loopback port free at this moment. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no free port");
  return address.port;
}

describe("the demo page against the numbered pipeline", () => {
  let dir = "";
  let proxy: CuttableProxy;
  let server: ServerProcess;
  let browser: Browser;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "parley-e2e-"));
    proxy = await CuttableProxy.listen();
    server = await ServerProcess.start(
      // The page's origin is the relay's; a short heartbeat shows a ping round trip soon.
      numberedConfig({ server: { allowed_origins: [proxy.origin] }, limits: { heartbeat_s: 2 } }),
    );
    proxy.forward(server.host, server.port);
    browser = await launch(speechWav(dir, "the quick brown fox jumps over the lazy dog"));
  });

  after(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("resumes after the network is cut, with no token or caption lost or repeated", async () => {
    const { page, problems } = await openDemo(browser.context, proxy.origin);
    await connect(page, "voice_agent");
    await say(page, `tokens ${TOKENS} 10`);
    await say(page, `count ${FINALS} 20`);
    // Cut while both streams are running.
    await until("50 tokens on the page", () => lastTurn(page), (t) => (t?.text.split(",").length ?? 0) > 50, 10_000);
    assert.ok(proxy.cut() >= 1, "the page had a connection through the relay");
    await until("the state resumed", () => states(page), (s) => s.includes("resumed"), 15_000);
    await screenshot(page, "numbered-resumed");

    const turn = await until("the turn's end", () => lastTurn(page), (t) => t?.status !== "streaming", 15_000);
    const expected = Array.from({ length: TOKENS }, (_, i) => `${i},`).join("");
    assert.equal(turn?.status, "completed");
    assert.equal(turn?.text, expected, "every token once, in order");

    const shown = await until("all captions", () => shownCaptions(page), (c) => c.length >= FINALS, 15_000);
    assert.deepEqual(
      shown.map((c) => c.segment),
      Array.from({ length: FINALS }, (_, i) => i),
      "every caption once, in order",
    );
    for (const c of shown) {
      assert.equal(c.state, "final");
      assert.equal(c.text.split(" ")[0], String(c.segment), `caption ${c.segment} shows its own text`);
    }

    assert.deepEqual(await states(page), ["idle", "connecting", "connected", "reconnecting", "resumed"]);
    assert.ok(proxy.accepted >= 3, "after the cut, the page came back through the relay");
    await until("a ping round trip", () => figure(page, "rtt"), (f) => /^\d+ ms/.test(f), 5_000);
    assert.deepEqual(await loggedErrors(page), []);
    await screenshot(page, "numbered-after-resume");
    assert.deepEqual(problems, []);
    await page.close();
  });

  it("sends the fake microphone as 16 kHz chunks of 50 ms, each captioned once", async () => {
    const { page, problems } = await openDemo(browser.context, proxy.origin);
    await connect(page, "caption");
    await page.click("#mic");
    await page.waitForSelector('#mic[aria-pressed="true"]', { timeout: 10_000 });
    // The numbered pipeline answers chunk i with a final "chunk i <bytes>".
    await until("20 chunk captions", () => shownCaptions(page), (c) => c.filter((x) => x.state === "final").length >= 20, 15_000);
    await page.click("#mic"); // stop: the last partial chunk, then audio.end
    const shown = await until("the end of the audio", () => shownCaptions(page), (c) => c.at(-1)?.text === "end", 10_000);
    const chunks = shown.slice(0, -1);
    assert.deepEqual(
      chunks.map((c) => c.segment),
      Array.from({ length: chunks.length }, (_, i) => i),
      "chunks numbered from 0 without a hole",
    );
    // 50 ms of 16 kHz mono s16le is 1600 bytes; only the flushed last chunk may be shorter.
    for (const c of chunks.slice(0, -1)) assert.equal(c.text, `chunk ${c.segment} 1600`);
    assert.match(chunks.at(-1)!.text, /^chunk \d+ \d+$/);
    assert.ok(shown.every((c) => c.state === "final"));
    assert.notEqual(await figure(page, "audio"), "0.0 s");
    await screenshot(page, "numbered-microphone");
    assert.deepEqual(problems, []);
    await page.close();
  });

  it("connects from the server's own origin as `make serve` runs it (no allowed_origins set)", async () => {
    // The default origin rule allows the server's own host and port, so the port is fixed.
    const own = await ServerProcess.start(numberedConfig(), await freePort());
    try {
      for (const origin of [own.http, `http://localhost:${own.port}`]) {
        const { page, problems } = await openDemo(browser.context, origin);
        await connect(page, "agent");
        await say(page, "tokens 5");
        const turn = await until("the turn's end", () => lastTurn(page), (t) => t?.status === "completed", 10_000);
        assert.equal(turn?.text, "0,1,2,3,4,");
        assert.deepEqual(problems, []);
        await page.close();
      }
    } finally {
      await own.stop();
    }
  });
});
