// What the integration tests watch: every event a ParleyClient hands to the app, and the
// real `ws` sockets it opens (to cut or stall the connection underneath it, and to read
// what it actually sent).

import { decode } from "@msgpack/msgpack";
import type { Socket } from "node:net";
import { WebSocket } from "ws";
import type { AudioGap } from "../../src/core/audio-outbox.js";
import type { ParleyError, PongEvent, StateChange } from "../../src/core/events.js";
import type {
  CaptionFinalMessage,
  CaptionPartialMessage,
  GoawayMessage,
  TokenMessage,
  TurnDoneMessage,
  TurnStartedMessage,
  WelcomeMessage,
  WireMap,
} from "../../src/core/messages.js";
import type { ParleyClient, WebSocketConstructor } from "../../src/socket/client.js";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One real socket the client opened, with the frames it was asked to send. */
export interface SocketRecord {
  readonly ws: WebSocket;
  readonly sent: (string | Uint8Array)[];
  /** The `seq` of every durable message that arrived on this socket, as it arrived. */
  readonly seqs: number[];
}

function frameMap(data: unknown, isBinary: boolean): WireMap {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : (data as Uint8Array);
  return isBinary ? (decode(bytes) as WireMap) : (JSON.parse(Buffer.from(bytes).toString("utf8")) as WireMap);
}

/** A `ws` WebSocket class that keeps every socket it makes, for the test to reach. */
export function trackedSockets(): { WebSocket: WebSocketConstructor; sockets: SocketRecord[] } {
  const sockets: SocketRecord[] = [];
  class Tracked extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      const record: SocketRecord = { ws: this, sent: [], seqs: [] };
      sockets.push(record);
      // Registered before the client's own handler, so it sees each frame first.
      this.on("message", (data: unknown, isBinary: boolean) => {
        const seq = frameMap(data, isBinary)["seq"];
        if (typeof seq === "number") record.seqs.push(seq);
      });
      const send = this.send.bind(this) as (data: unknown) => void;
      this.send = ((data: string | Uint8Array) => {
        record.sent.push(data);
        send(data);
      }) as WebSocket["send"];
    }
  }
  return { WebSocket: Tracked, sockets };
}

/** The TCP socket under a `ws` WebSocket. */
export function tcpOf(ws: WebSocket): Socket {
  const socket = (ws as unknown as { _socket: Socket | null })._socket;
  if (socket === null) throw new Error("the WebSocket has no TCP socket (not open)");
  return socket;
}

/** A client frame as the server reads it (msgpack or JSON; a bare binary frame in JSON mode is audio). */
export function readSent(frame: string | Uint8Array, protocol: string): WireMap {
  if (protocol === "parley.v1.msgpack") return decode(frame as Uint8Array) as WireMap;
  if (typeof frame !== "string") return { type: "audio", data: frame, binary: true };
  return JSON.parse(frame) as WireMap;
}

/** Everything one client reported, in arrival order, with a way to wait for a condition. */
export class Recorder {
  readonly states: StateChange[] = [];
  readonly welcomes: WelcomeMessage[] = [];
  readonly finals: CaptionFinalMessage[] = [];
  readonly partials: CaptionPartialMessage[] = [];
  readonly started: TurnStartedMessage[] = [];
  readonly tokens: TokenMessage[] = [];
  readonly done: TurnDoneMessage[] = [];
  readonly errors: ParleyError[] = [];
  readonly pongs: PongEvent[] = [];
  readonly goaways: GoawayMessage[] = [];
  readonly dropped: AudioGap[] = [];
  /** Every event type in order, for ordering checks. */
  readonly log: string[] = [];
  private waiters: (() => void)[] = [];

  constructor(readonly client: ParleyClient) {
    const keep =
      <T>(list: T[], type: string) =>
      (data: T) => {
        list.push(data);
        this.log.push(type);
        this.wake();
      };
    client.on("state", keep(this.states, "state"));
    client.on("welcome", keep(this.welcomes, "welcome"));
    client.on("caption.final", keep(this.finals, "caption.final"));
    client.on("caption.partial", keep(this.partials, "caption.partial"));
    client.on("turn.started", keep(this.started, "turn.started"));
    client.on("token", keep(this.tokens, "token"));
    client.on("turn.done", keep(this.done, "turn.done"));
    client.on("error", keep(this.errors, "error"));
    client.on("pong", keep(this.pongs, "pong"));
    client.on("goaway", keep(this.goaways, "goaway"));
    client.on("audio.dropped", keep(this.dropped, "audio.dropped"));
  }

  segments(): number[] {
    return this.finals.map((f) => f.segment);
  }

  /** The client's own errors (protocol violations, gaps, timeouts). */
  clientErrors(): ParleyError[] {
    return this.errors.filter((e) => e.source === "client");
  }

  stateNames(): string[] {
    return this.states.map((s) => s.state);
  }

  /** Resolves once `ok()` holds (checked after every event), or fails after `timeoutMs`. */
  until(ok: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; states ${this.stateNames().join(" → ")}; ` +
              `${this.finals.length} finals, ${this.tokens.length} tokens; errors ${JSON.stringify(this.errors)}`,
          ),
        );
      }, timeoutMs);
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

/** `0, 1, …, n-1` */
export function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}
