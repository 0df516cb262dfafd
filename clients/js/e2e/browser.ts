// Headless Chromium for the demo page's tests: Debian's /usr/bin/chromium driven by
// playwright-core (no browser download), with a fake microphone that plays a WAV file.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { repoRoot } from "../tests/integration/server.js";

export const CHROMIUM = process.env["PARLEY_CHROMIUM"] ?? "/usr/bin/chromium";
export const ARTIFACTS = join(repoRoot(), "test-artifacts", "demo");

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Chromium with a fresh profile; `wav` becomes the microphone. */
export async function launch(wav: string): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (make system-deps, or apt-get install -y chromium)`);
  }
  const profile = mkdtempSync(join(tmpdir(), "parley-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      ...ARGS,
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${wav}`,
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A full-page screenshot in test-artifacts/demo/. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * A spoken sentence as 16-bit PCM WAV (espeak-ng), followed by `silenceS` of silence so
 * that, as Chromium loops the file, each repetition ends an utterance.
 */
export function speechWav(dir: string, text: string, silenceS = 1.5): string {
  const raw = join(dir, "speech-raw.wav");
  try {
    execFileSync("espeak-ng", ["-s", "150", "-w", raw, text], { stdio: "pipe" });
  } catch (err) {
    throw new Error(`espeak-ng could not make the test speech (make system-deps installs it): ${String(err)}`);
  }
  const wav = readFileSync(raw);
  const fmt = chunk(wav, "fmt ");
  const data = chunk(wav, "data");
  const channels = fmt.readUInt16LE(2);
  const rate = fmt.readUInt32LE(4);
  const bits = fmt.readUInt16LE(14);
  if (fmt.readUInt16LE(0) !== 1 || bits !== 16) throw new Error(`espeak-ng wrote ${bits}-bit audio, format ${fmt.readUInt16LE(0)}`);
  const pad = Buffer.alloc(Math.round(silenceS * rate) * channels * 2);
  const out = join(dir, "speech.wav");
  writeFileSync(out, wavFile(Buffer.concat([pad, data, pad]), rate, channels));
  return out;
}

function chunk(wav: Buffer, id: string): Buffer {
  if (wav.toString("ascii", 0, 4) !== "RIFF" || wav.toString("ascii", 8, 12) !== "WAVE") throw new Error("not a WAV file");
  for (let at = 12; at + 8 <= wav.length; ) {
    const size = wav.readUInt32LE(at + 4);
    const body = wav.subarray(at + 8, Math.min(wav.length, at + 8 + size));
    if (wav.toString("ascii", at, at + 4) === id) return body;
    at += 8 + size + (size & 1);
  }
  throw new Error(`no ${id} chunk in the WAV file`);
}

function wavFile(pcm: Buffer, rate: number, channels: number): Buffer {
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write("WAVEfmt ", 8, "ascii");
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * channels * 2, 28);
  header.writeUInt16LE(channels * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write("data", 36, "ascii");
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}
