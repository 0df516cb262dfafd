// A scripted server on loopback for the socket shell's tests: a real WebSocket server
// (the `ws` package) whose side of the protocol each test writes out by hand, so that
// reconnects, close codes and silence can be staged exactly.

import { decode, encode } from "@msgpack/msgpack";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import type { WireMap } from "../../src/core/messages.js";

export class PeerConnection {
  readonly received: WireMap[] = [];
  private waiters: (() => void)[] = [];
  closedWith: number | null = null;

  constructor(
    readonly ws: WebSocket,
    readonly protocol: string,
  ) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      let m: WireMap;
      if (protocol === "parley.v1.msgpack") m = decode(data) as WireMap;
      else if (isBinary) m = { type: "audio", data: new Uint8Array(data), binary: true };
      else {
        m = JSON.parse(data.toString("utf8")) as WireMap;
        if (m["type"] === "audio") m["data"] = new Uint8Array(Buffer.from(m["data"] as string, "base64"));
      }
      this.received.push(m);
      this.wake();
    });
    ws.on("close", (code: number) => {
      this.closedWith = code;
      this.wake();
    });
  }

  send(map: WireMap): void {
    this.ws.send(this.protocol === "parley.v1.msgpack" ? encode(map) : JSON.stringify(map));
  }

  /** The messages of `type` received so far, once there are at least `count`. */
  async messages(type: string, count = 1, timeoutMs = 3000): Promise<WireMap[]> {
    await this.until(() => this.received.filter((m) => m["type"] === type).length >= count, timeoutMs, `${count} × ${type}`);
    return this.received.filter((m) => m["type"] === type);
  }

  async closed(timeoutMs = 3000): Promise<number> {
    await this.until(() => this.closedWith !== null, timeoutMs, "close");
    return this.closedWith!;
  }

  private until(ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      const check = () => {
        if (!ok()) return this.waiters.push(check);
        clearTimeout(timer);
        resolve();
      };
      check();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

export class Peer {
  readonly connections: PeerConnection[] = [];
  private readonly server: WebSocketServer;
  private waiters: (() => void)[] = [];

  private constructor(server: WebSocketServer) {
    this.server = server;
    server.on("connection", (ws) => {
      this.connections.push(new PeerConnection(ws, ws.protocol));
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    });
  }

  /** `choose` picks the sub-protocol from the client's offer (default: its first). */
  static async start(choose: (offered: Set<string>) => string | false = (o) => [...o][0] ?? false): Promise<Peer> {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/v1/stream", handleProtocols: choose });
    await new Promise<void>((resolve) => server.once("listening", resolve));
    return new Peer(server);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/stream`;
  }

  /** The `n`th connection (0-based), once it has arrived. */
  connection(n: number, timeoutMs = 3000): Promise<PeerConnection> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for connection ${n}`)), timeoutMs);
      const check = () => {
        const c = this.connections[n];
        if (c === undefined) return this.waiters.push(check);
        clearTimeout(timer);
        resolve(c);
      };
      check();
    });
  }

  async stop(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function welcome(over: WireMap = {}): WireMap {
  return {
    type: "welcome",
    session_id: "s-1",
    resume_token: "rt-1",
    resumed: false,
    last_seq: 0,
    audio_next: 0,
    heartbeat_s: 5,
    resume_ttl_s: 30,
    limits: { max_frame_bytes: 65536, max_text_chars: 4000, replay_events: 512, max_audio_queue_s: 10 },
    server: { version: "0.1.0", node: "peer" },
    ...over,
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
