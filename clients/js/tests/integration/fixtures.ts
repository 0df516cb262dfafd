// Shared by the integration suites: clients that record what they report and end their
// sessions after each test, the server each suite starts, and small waiting helpers.

import { after, afterEach, before } from "node:test";
import type { ParleyError } from "../../src/core/events.js";
import { ParleyClient, type ClientOptions } from "../../src/socket/client.js";
import { readSent, Recorder, sleep, trackedSockets, type SocketRecord } from "./observe.js";
import { pythonOf, repoRoot, ServerProcess, type ServerConfig } from "./server.js";

// Without the project's virtualenv there is no server to test against: fail at once, saying so.
pythonOf(repoRoot());

export interface Opened {
  client: ParleyClient;
  rec: Recorder;
  sockets: SocketRecord[];
}

const opened: ParleyClient[] = [];

/** A client of `url` over tracked sockets, with a short backoff; `over` replaces any option. */
export function open(url: string, over: Partial<ClientOptions> = {}): Opened {
  const { WebSocket, sockets } = trackedSockets();
  const client = new ParleyClient({
    url,
    token: "test",
    WebSocket,
    backoff: { baseMs: 50, maxMs: 500 },
    session: { mode: "agent" },
    ...over,
  });
  opened.push(client);
  return { client, rec: new Recorder(client), sockets };
}

// Every client ends its session, so that no test's leftovers weigh on the next one's figures.
export function endClients(): void {
  for (const client of opened.splice(0)) client.bye();
}

/**
 * Inside a `describe`: one server for its tests, started before and killed after them;
 * the clients of each test end their sessions after it.
 */
export function useServer(config: ServerConfig): () => ServerProcess {
  let server: ServerProcess | null = null;
  before(async () => {
    server = await ServerProcess.start(config);
  });
  afterEach(endClients);
  after(async () => {
    await server?.stop();
  });
  return () => server!;
}

/** The messages of `type` the client sent on one socket. */
export function sentOf(socket: SocketRecord, type: string): Record<string, unknown>[] {
  return socket.sent.map((f) => readSent(f, socket.ws.protocol)).filter((m) => m["type"] === type);
}

/** Polls `probe` until it returns `want`; returns the last value either way. */
export async function settle<T>(probe: () => Promise<T>, want: T, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (value !== want && Date.now() < deadline) {
    await sleep(50);
    value = await probe();
  }
  return value;
}

export const lastSegmentIs = (rec: Recorder, n: number) => () => rec.finals.at(-1)?.segment === n;

export const serverErrors = (rec: Recorder, code: string): ParleyError[] =>
  rec.errors.filter((e) => e.source === "server" && e.code === code);
