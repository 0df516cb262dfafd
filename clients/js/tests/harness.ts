// Drives a ProtocolCore the way a server would see it: server maps in, the client's
// frames decoded back to maps, events and socket actions recorded, time moved by hand.

import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";
import { JsonCodec, MsgpackCodec, type Codec, type Frame } from "../src/core/codec.js";
import type { ParleyEvent, ParleyEvents } from "../src/core/events.js";
import type { WireMap } from "../src/core/messages.js";
import { ProtocolCore, type CoreOptions } from "../src/core/protocol.js";

export type CodecName = "json" | "msgpack";

export function makeCodec(name: CodecName, binaryAudio = false): Codec {
  return name === "json" ? new JsonCodec(binaryAudio) : new MsgpackCodec();
}

/** A frame as the server would put it on the wire. */
export function serverFrame(codec: CodecName, map: WireMap): Frame {
  return codec === "json" ? JSON.stringify(map) : msgpackEncode(map);
}

/** A client frame as the server reads it; audio bytes come back as Uint8Array either way. */
export function readClientFrame(codec: CodecName, frame: Frame): WireMap {
  if (codec === "msgpack") return msgpackDecode(frame as Uint8Array) as WireMap;
  if (typeof frame !== "string") return { type: "audio", data: new Uint8Array(frame), binary: true };
  const m = JSON.parse(frame) as WireMap;
  if (m["type"] === "audio") m["data"] = new Uint8Array(Buffer.from(m["data"] as string, "base64"));
  return m;
}

export function welcomeMap(over: WireMap = {}): WireMap {
  return {
    type: "welcome",
    session_id: "s-1",
    resume_token: "rt-1",
    resumed: false,
    last_seq: 0,
    audio_next: 0,
    heartbeat_s: 10,
    resume_ttl_s: 60,
    limits: { max_frame_bytes: 65536, max_text_chars: 4000, replay_events: 512, max_audio_queue_s: 10 },
    server: { version: "0.1.0", node: "n1" },
    mode: "agent",
    ...over,
  };
}

export class Harness {
  readonly core: ProtocolCore;
  now = 1000;
  /** Client messages since the last `takeSent`. */
  sent: WireMap[] = [];
  events: ParleyEvent[] = [];
  opens = 0;
  closes: { code: number; reason: string }[] = [];

  constructor(
    options: CoreOptions = {},
    readonly codec: CodecName = "json",
    readonly binaryAudio = false,
  ) {
    this.core = new ProtocolCore({ random: () => 0.5, ...options });
  }

  start(): this {
    this.core.start(this.now);
    return this.drain();
  }

  /** The socket asked for has opened. */
  opened(token = "key-1"): this {
    this.core.socketOpened(token, makeCodec(this.codec, this.binaryAudio));
    return this.drain();
  }

  /** start + open + welcome: a live session. */
  live(welcome: WireMap = {}): this {
    this.start().opened().server(welcomeMap(welcome));
    this.takeSent();
    this.events = [];
    return this;
  }

  server(map: WireMap): this {
    return this.frame(serverFrame(this.codec, map));
  }

  frame(frame: Frame): this {
    this.core.receive(frame, this.now);
    return this.drain();
  }

  closed(code: number, reason = ""): this {
    this.core.socketClosed(this.now, code, reason);
    return this.drain();
  }

  /** Moves time on by `ms` and lets the core act on what fell due. */
  advance(ms: number): this {
    this.now += ms;
    this.core.tick(this.now);
    return this.drain();
  }

  /** Moves time to the core's next deadline. */
  untilDeadline(): this {
    const at = this.core.nextDeadline();
    if (at === null) throw new Error("no deadline");
    return this.advance(Math.max(0, at - this.now));
  }

  drain(): this {
    for (const a of this.core.takeActions()) {
      if (a.type === "open") this.opens += 1;
      else if (a.type === "close") this.closes.push({ code: a.code, reason: a.reason });
      else this.sent.push(readClientFrame(this.codec, a.frame));
    }
    this.events.push(...this.core.takeEvents());
    return this;
  }

  takeSent(): WireMap[] {
    const out = this.sent;
    this.sent = [];
    return out;
  }

  takeEvents(): ParleyEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  /** Data of the events of one type, taken out of the record. */
  take<K extends keyof ParleyEvents>(type: K): ParleyEvents[K][] {
    const hit = this.events.filter((e) => e.type === type);
    this.events = this.events.filter((e) => e.type !== type);
    return hit.map((e) => e.data as ParleyEvents[K]);
  }

  types(): string[] {
    return this.events.map((e) => e.type);
  }
}

export const CODECS: CodecName[] = ["json", "msgpack"];

/** A small deterministic PRNG (mulberry32) for generated hostile input. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
