// The demo page in headless Chromium against the real pipelines: the llama.cpp agent
// (streaming, cancel) and, when the server offers it, the caption mode fed by Chromium's
// fake microphone playing espeak-ng speech.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { repoRoot, ServerProcess } from "../tests/integration/server.js";
import { launch, screenshot, speechWav, type Browser } from "./browser.js";
import { connect, figure, lastTurn, loggedErrors, openDemo, say, shownCaptions, until } from "./page.js";
import { CuttableProxy } from "./proxy.js";

// espeak-ng's "quick brown fox" is misheard by tiny.en ("quick round fog") at every
// encoder window: a sentence the model hears reliably keeps this test about the page.
const SENTENCE = "can you help me find my order, please";
const CAPTION_PROVIDER = join(repoRoot(), "pipelines", "audio", "provider.py");

/** The modes of the server's `ready` log line. */
function readyModes(server: ServerProcess): string[] {
  for (const line of server.lines) {
    if (!line.startsWith("{")) continue;
    const record = JSON.parse(line) as { event?: string; modes?: string[] };
    if (record.event === "ready") return record.modes ?? [];
  }
  throw new Error(`the server never logged "ready":\n${server.lines.join("\n")}`);
}

describe("the demo page against the real pipelines", () => {
  let dir = "";
  let proxy: CuttableProxy;
  let server: ServerProcess;
  let browser: Browser;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "parley-e2e-"));
    proxy = await CuttableProxy.listen();
    server = await ServerProcess.start({
      server: { allowed_origins: [proxy.origin] },
      pipelines: {
        agent: "pipelines.text.provider:create_provider",
        caption: "pipelines.audio.provider:create_provider",
      },
    });
    proxy.forward(server.host, server.port);
    browser = await launch(speechWav(dir, SENTENCE));
  });

  after(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("streams the agent's answer and the cancel button ends the turn cancelled", async () => {
    assert.ok(readyModes(server).includes("agent"), "the agent mode loaded");
    const { page, problems } = await openDemo(browser.context, proxy.origin);
    await connect(page, "agent");

    await say(page, "Say hello in five words.");
    const short = await until("a finished answer", () => lastTurn(page), (t) => t !== null && t.status !== "streaming", 30_000);
    assert.ok(["completed", "length"].includes(short!.status), `status ${short!.status}`);
    assert.ok(short!.text.trim().length > 0, "the answer has text");
    assert.notEqual(await figure(page, "ttft"), "–");
    assert.notEqual(await figure(page, "first-token"), "–");

    await say(page, "Write a very long story about a dragon who learns to cook, with many chapters.");
    await until(
      "a second answer streaming",
      () => page.$$eval(".msg.agent", (items) => items.length),
      (n) => n >= 2,
      30_000,
    );
    const streaming = await until("some tokens", () => lastTurn(page), (t) => (t?.text.length ?? 0) >= 20, 30_000);
    assert.equal(streaming!.status, "streaming", "still streaming when cancel is pressed");
    await page.click("#cancel");
    const ended = await until("the turn's end", () => lastTurn(page), (t) => t?.status !== "streaming", 10_000);
    assert.equal(ended!.status, "cancelled");
    assert.ok(ended!.text.startsWith(streaming!.text), "the text shown before cancel stays");
    assert.ok(await page.isDisabled("#cancel"), "nothing left to cancel");
    assert.notEqual(await figure(page, "total"), "–");
    await screenshot(page, "real-agent-cancelled");
    assert.deepEqual(await loggedErrors(page), []);
    assert.deepEqual(problems, []);
    await page.close();
  });

  it("captions the fake microphone's speech", async (t) => {
    if (!existsSync(CAPTION_PROVIDER)) {
      t.skip(`${CAPTION_PROVIDER} does not exist yet`);
      return;
    }
    // The provider exists: it must have loaded, and captions must come.
    assert.ok(readyModes(server).includes("caption"), `the caption mode did not load: ${readyModes(server).join(", ")}`);
    const { page, problems } = await openDemo(browser.context, proxy.origin);
    await connect(page, "caption");
    await page.click("#mic");
    await page.waitForSelector('#mic[aria-pressed="true"]', { timeout: 10_000 });
    const words = ["help", "find", "my", "order", "please", "can"];
    const heard = (text: string) => words.filter((w) => text.toLowerCase().includes(w));
    const finals = await until(
      "captions with the spoken words",
      async () => (await shownCaptions(page)).filter((c) => c.state === "final").map((c) => c.text).join(" "),
      (text) => heard(text).length >= 4,
      45_000,
    );
    assert.ok(heard(finals).length >= 4, finals);
    await until("a caption latency", () => figure(page, "final"), (f) => f !== "–", 5_000);
    await screenshot(page, "real-captions");
    await page.click("#mic");
    await page.waitForSelector('#mic[aria-pressed="false"]', { timeout: 10_000 });
    assert.deepEqual(await loggedErrors(page), []);
    assert.deepEqual(problems, []);
    await page.close();
  });
});
