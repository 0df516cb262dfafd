// The real Parley server as a child process on loopback, started the way operators start
// it (`python -m server.cli serve`), with the numbered test pipeline in every mode
// (tests/support/numbered.py) so that what arrives can be checked event by event.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const LISTENING = /listening on ws:\/\/([^\s/]+):(\d+)\/v1\/stream/;
const NUMBERED = "tests.support.numbered:create_provider";
const START_TIMEOUT_MS = 60_000;

type TomlValue = string | number | boolean | string[];
/** `section → key → value`, written as a TOML file. */
export type ServerConfig = Record<string, Record<string, TomlValue>>;

/** The repository root: the nearest directory above this file that holds the server. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "pyproject.toml")) && existsSync(join(dir, "server", "cli.py"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no repository root (pyproject.toml + server/cli.py) above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The virtualenv's Python, or an error that says how to make one. */
export function pythonOf(root: string): string {
  const python = join(root, ".venv", "bin", "python");
  if (!existsSync(python)) {
    throw new Error(
      `${python} is missing: the integration tests start the real Python server. ` +
        `Run \`make install\` in ${root} first (it creates .venv).`,
    );
  }
  return python;
}

function toml(value: TomlValue): string {
  if (typeof value === "string") return JSON.stringify(value); // a JSON string is a valid TOML basic string
  if (Array.isArray(value)) return `[${value.map(toml).join(", ")}]`;
  return String(value);
}

/** Settings with the numbered pipeline in every mode, plus `extra` sections. */
export function numberedConfig(extra: ServerConfig = {}): ServerConfig {
  return { pipelines: { agent: NUMBERED, caption: NUMBERED, voice_agent: NUMBERED }, ...extra };
}

function writeConfig(path: string, config: ServerConfig): void {
  const lines: string[] = [];
  for (const [section, body] of Object.entries(config)) {
    lines.push(`[${section}]`);
    for (const [key, value] of Object.entries(body)) lines.push(`${key} = ${toml(value)}`);
  }
  writeFileSync(path, lines.join("\n") + "\n");
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// Killed with the test process too, should a suite end without its after() hook.
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export class ServerProcess {
  /** stdout and stderr of the server, line by line (its JSON logs included). */
  readonly lines: string[];
  /** The exit status, once the process has ended (null when a signal ended it). */
  readonly exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcess,
    readonly host: string,
    readonly port: number,
    lines: string[],
    exited: Promise<number | null>,
    private readonly dir: string,
  ) {
    this.lines = lines;
    this.exited = exited;
  }

  get url(): string {
    return `ws://${this.host}:${this.port}/v1/stream`;
  }

  get http(): string {
    return `http://${this.host}:${this.port}`;
  }

  /**
   * Starts a server with `config` (port 0 picks a free one) and waits until it says
   * where it listens and `/readyz` answers 200.
   */
  static async start(config: ServerConfig, port = 0): Promise<ServerProcess> {
    const root = repoRoot();
    const python = pythonOf(root);
    const dir = mkdtempSync(join(tmpdir(), "parley-js-"));
    const configPath = join(dir, "parley.toml");
    writeConfig(configPath, config);
    const child = spawn(python, ["-m", "server.cli", "serve", "--port", String(port), "--config", configPath], {
      cwd: root,
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(child);
    const lines: string[] = [];
    let listening: RegExpExecArray | null = null;
    let wake: (() => void) | null = null;
    const collect = (stream: NodeJS.ReadableStream) => {
      let rest = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        for (const line of parts) {
          lines.push(line);
          listening ??= LISTENING.exec(line);
        }
        wake?.();
      });
    };
    collect(child.stdout!);
    collect(child.stderr!);
    const exited = new Promise<number | null>((resolve) => {
      child.on("exit", (code) => {
        running.delete(child);
        resolve(code);
        wake?.();
      });
    });
    const fail = (why: string): never => {
      child.kill("SIGKILL");
      throw new Error(`${why}:\n${lines.slice(-40).join("\n")}`);
    };
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (listening === null) {
      if (child.exitCode !== null || child.signalCode !== null) fail("the server exited before listening");
      if (Date.now() > deadline) fail("the server did not start in time");
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    wake = null;
    const found: RegExpExecArray = listening;
    const server = new ServerProcess(child, found[1]!, Number(found[2]), lines, exited, dir);
    // Ready means the pipelines are loaded.
    while ((await server.status("/readyz")) !== 200) {
      if (child.exitCode !== null || Date.now() > deadline) fail("the server never became ready");
      await sleep(50);
    }
    return server;
  }

  /** The HTTP status of GET `path` (0 when nothing answers). */
  async status(path: string): Promise<number> {
    try {
      const res = await fetch(this.http + path);
      await res.arrayBuffer();
      return res.status;
    } catch {
      return 0;
    }
  }

  /** The value of one sample of `/metrics` (0 when absent). */
  async metric(name: string, labels = ""): Promise<number> {
    const res = await fetch(this.http + "/metrics");
    const wanted = (labels ? `${name}{${labels}}` : name) + " ";
    for (const line of (await res.text()).split("\n")) {
      if (line.startsWith(wanted)) return Number(line.slice(wanted.length).trim());
    }
    return 0;
  }

  /** Sends `signal` and waits for the exit status (SIGTERM drains first). */
  async signal(signal: NodeJS.Signals, timeoutMs = 30_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the server did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the server (if it still runs) and removes its config. */
  async stop(): Promise<void> {
    try {
      await this.signal("SIGKILL", 10_000);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
