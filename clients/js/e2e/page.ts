// Driving the demo page the way a person does (fields, buttons), and reading back what it
// shows. Waits poll the page's own DOM: the tests judge what is rendered.

import type { BrowserContext, Page } from "playwright-core";

export interface DemoPage {
  page: Page;
  /** Uncaught exceptions and console errors of the page. */
  problems: string[];
}

export async function openDemo(context: BrowserContext, origin: string): Promise<DemoPage> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  const res = await page.goto(origin + "/");
  if (res === null || res.status() !== 200) throw new Error(`GET / answered ${res?.status() ?? "nothing"}`);
  await page.waitForSelector('#state[data-state="idle"]');
  return { page, problems };
}

/** Picks `mode`, presses Connect and waits for the state "connected". */
export async function connect(page: Page, mode: string, diarization = false): Promise<void> {
  await page.selectOption("#mode", mode);
  if (diarization) await page.check("#diarization");
  await page.click("#connect");
  await page.waitForSelector('#state[data-state="connected"]', { timeout: 15_000 });
}

export async function say(page: Page, text: string): Promise<void> {
  await page.fill("#message", text);
  await page.click("#send");
}

/** The states the connection log shows, oldest first. */
export function states(page: Page): Promise<string[]> {
  return page.$$eval("#history li[data-state]", (items) => items.map((li) => li.getAttribute("data-state") ?? ""));
}

/** The log's error lines. */
export function loggedErrors(page: Page): Promise<string[]> {
  return page.$$eval("#history li.error", (items) => items.map((li) => li.textContent ?? ""));
}

/** The text of the agent turn shown last, and its status. */
export function lastTurn(page: Page): Promise<{ text: string; status: string } | null> {
  return page.$$eval(".msg.agent", (items) => {
    const li = items.at(-1);
    if (li === undefined) return null;
    return { text: li.querySelector(".text")?.textContent ?? "", status: li.getAttribute("data-status") ?? "" };
  });
}

export interface ShownCaption {
  segment: number;
  state: string;
  speaker: string | null;
  text: string;
}

export function shownCaptions(page: Page): Promise<ShownCaption[]> {
  return page.$$eval("#captions li", (items) =>
    items.map((li) => ({
      segment: Number(li.getAttribute("data-segment")),
      state: li.getAttribute("data-state") ?? "",
      speaker: li.querySelector(".speaker")?.textContent ?? null,
      text: li.querySelector(".caption-text")?.textContent ?? "",
    })),
  );
}

export function figure(page: Page, name: string): Promise<string> {
  return page.$eval(`[data-figure="${name}"]`, (el) => el.textContent ?? "");
}

/** Polls `probe` until `done` holds for its value; throws with the last value after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
