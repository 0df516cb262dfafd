// Wire messages of PROTOCOL.md ("Client → server", "Server → client"), typed, and the
// one place where a decoded server map is checked field by field. Field names stay as
// they are on the wire so that the docs and the protocol read the same.

export type WireMap = Record<string, unknown>;

export type Mode = "caption" | "agent" | "voice_agent";

export interface AudioFormat {
  encoding?: "pcm_s16le";
  sample_rate?: number;
  channels?: number;
}

export interface SessionConfig {
  mode?: Mode;
  audio?: AudioFormat;
  language?: string;
  diarization?: boolean;
  tools?: string[];
  latency_budget_ms?: number;
  client?: { name?: string; version?: string };
}

export interface ResumeState {
  session_id: string;
  resume_token: string;
  last_seq: number;
}

export type ClientMessage =
  | {
      type: "hello";
      v: 1;
      token: string;
      resume?: { token: string; last_seq: number };
      session?: SessionConfig;
    }
  | { type: "audio"; data: Uint8Array; chunk?: number }
  | { type: "audio.end" }
  | { type: "text"; text: string; id?: string }
  | { type: "cancel"; turn_id?: string }
  | { type: "ack"; seq: number }
  | { type: "ping"; id?: unknown }
  | { type: "update"; session: SessionConfig }
  | { type: "bye" };

// Known values, kept open to newer servers: an unknown status is passed on, not dropped.
export type TurnStatus = "completed" | "cancelled" | "failed" | "length" | (string & {});
export type TurnInput = "text" | "speech" | (string & {});

export interface Limits {
  max_frame_bytes?: number;
  max_text_chars?: number;
  replay_events?: number;
  max_audio_queue_s?: number;
}

export interface WelcomeMessage {
  type: "welcome";
  session_id: string;
  resume_token: string;
  resumed: boolean;
  last_seq: number;
  audio_next: number;
  heartbeat_s: number;
  resume_ttl_s: number;
  limits: Limits;
  server: { version?: string; node?: string };
  mode?: string;
}

export interface SpeechMessage {
  type: "speech.started" | "speech.stopped";
  seq: number;
  at: number;
}

export interface Word {
  w: string;
  start: number;
  end: number;
  p: number;
}

export interface CaptionPartialMessage {
  type: "caption.partial";
  segment: number;
  text: string;
  start: number;
  end: number;
  speaker: string | null;
}

export interface CaptionFinalMessage {
  type: "caption.final";
  seq: number;
  segment: number;
  text: string;
  start: number;
  end: number;
  speaker: string | null;
  words?: Word[];
}

export interface SpeakerMergedMessage {
  type: "speaker.merged";
  seq: number;
  merged: string;
  into: string;
}

export interface TurnStartedMessage {
  type: "turn.started";
  seq: number;
  turn_id: string;
  input: TurnInput;
  input_id?: string;
}

export interface TokenMessage {
  type: "token";
  seq: number;
  turn_id: string;
  text: string;
}

export interface ToolCallMessage {
  type: "tool.call";
  seq: number;
  turn_id: string;
  call_id: string;
  name: string;
  arguments: WireMap;
}

export interface ToolResultMessage {
  type: "tool.result";
  seq: number;
  turn_id: string;
  call_id: string;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

export interface TurnDoneMessage {
  type: "turn.done";
  seq: number;
  turn_id: string;
  status: TurnStatus;
  reason?: string;
  usage: { input_tokens: number; output_tokens: number };
  timings: Record<string, number>;
}

export interface ErrorMessage {
  type: "error";
  seq?: number;
  code: string;
  message: string;
  fatal: boolean;
}

export interface PongMessage {
  type: "pong";
  id: unknown;
  server_time: number;
}

export interface GoawayMessage {
  type: "goaway";
  reason: string;
  reconnect_after_ms: number;
}

export type TurnMessage = TurnStartedMessage | TokenMessage | ToolCallMessage | ToolResultMessage | TurnDoneMessage;

export type ServerMessage =
  | WelcomeMessage
  | SpeechMessage
  | CaptionPartialMessage
  | CaptionFinalMessage
  | SpeakerMergedMessage
  | TurnMessage
  | ErrorMessage
  | PongMessage
  | GoawayMessage;

/** A server message that breaks the protocol: a missing or mistyped field. */
export class ProtocolViolation extends Error {
  override readonly name = "ProtocolViolation";
}

/** Types that must carry `seq` (PROTOCOL.md, "Server → client", column "durable"). */
export const DURABLE_TYPES: ReadonlySet<string> = new Set([
  "speech.started",
  "speech.stopped",
  "caption.final",
  "speaker.merged",
  "turn.started",
  "token",
  "tool.call",
  "tool.result",
  "turn.done",
]);

// Field readers: each names the message type and field in its complaint, so a report
// of a broken server says exactly what was wrong.
class Fields {
  constructor(
    readonly m: WireMap,
    readonly type: string,
  ) {}

  private fail(key: string, want: string): never {
    const got = this.m[key];
    const what = got === null ? "null" : Array.isArray(got) ? "array" : typeof got;
    throw new ProtocolViolation(`${this.type}.${key}: expected ${want}, got ${what}`);
  }

  str(key: string): string {
    const v = this.m[key];
    return typeof v === "string" ? v : this.fail(key, "string");
  }

  num(key: string): number {
    const v = this.m[key];
    return typeof v === "number" && Number.isFinite(v) ? v : this.fail(key, "number");
  }

  int(key: string): number {
    const v = this.m[key];
    return Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : this.fail(key, "integer ≥ 0");
  }

  bool(key: string): boolean {
    const v = this.m[key];
    return typeof v === "boolean" ? v : this.fail(key, "boolean");
  }

  map(key: string): WireMap {
    const v = this.m[key];
    return isMap(v) ? v : this.fail(key, "map");
  }

  has(key: string): boolean {
    return this.m[key] !== undefined;
  }

  optStr(key: string): string | undefined {
    return this.has(key) && this.m[key] !== null ? this.str(key) : undefined;
  }

  /** A speaker label: absent and null both mean "no label". */
  speaker(): string | null {
    return this.optStr("speaker") ?? null;
  }

  sub(key: string): Fields {
    return new Fields(this.map(key), `${this.type}.${key}`);
  }
}

export function isMap(v: unknown): v is WireMap {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function words(f: Fields): Word[] | undefined {
  if (!f.has("words") || f.m["words"] === null) return undefined;
  const raw = f.m["words"];
  if (!Array.isArray(raw)) throw new ProtocolViolation(`${f.type}.words: expected array`);
  return raw.map((item, i) => {
    if (!isMap(item)) throw new ProtocolViolation(`${f.type}.words[${i}]: expected map`);
    const w = new Fields(item, `${f.type}.words[${i}]`);
    return { w: w.str("w"), start: w.num("start"), end: w.num("end"), p: w.num("p") };
  });
}

function numberMap(f: Fields, key: string): Record<string, number> {
  const m = f.map(key);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new ProtocolViolation(`${f.type}.${key}.${k}: expected number`);
    }
    out[k] = v;
  }
  return out;
}

type Parser = (f: Fields, seq: number) => ServerMessage;

// Looked up only through isKnownType: a plain object also answers to "toString".
const PARSERS: Record<string, Parser> = {
  welcome: (f) => {
    const limits = f.has("limits") ? f.sub("limits") : new Fields({}, "welcome.limits");
    const server = f.has("server") ? f.sub("server") : new Fields({}, "welcome.server");
    const lim: Limits = {};
    for (const key of ["max_frame_bytes", "max_text_chars", "replay_events"] as const) {
      if (limits.has(key)) lim[key] = limits.int(key);
    }
    if (limits.has("max_audio_queue_s")) lim.max_audio_queue_s = limits.num("max_audio_queue_s");
    const srv: WelcomeMessage["server"] = {};
    const version = server.optStr("version");
    const node = server.optStr("node");
    if (version !== undefined) srv.version = version;
    if (node !== undefined) srv.node = node;
    const heartbeat = f.num("heartbeat_s");
    if (heartbeat <= 0) throw new ProtocolViolation("welcome.heartbeat_s: expected number > 0");
    const out: WelcomeMessage = {
      type: "welcome",
      session_id: f.str("session_id"),
      resume_token: f.str("resume_token"),
      resumed: f.bool("resumed"),
      last_seq: f.int("last_seq"),
      audio_next: f.int("audio_next"),
      heartbeat_s: heartbeat,
      resume_ttl_s: f.num("resume_ttl_s"),
      limits: lim,
      server: srv,
    };
    const mode = f.optStr("mode");
    if (mode !== undefined) out.mode = mode;
    return out;
  },
  "speech.started": (f, seq) => ({ type: "speech.started", seq, at: f.num("at") }),
  "speech.stopped": (f, seq) => ({ type: "speech.stopped", seq, at: f.num("at") }),
  "caption.partial": (f) => ({
    type: "caption.partial",
    segment: f.int("segment"),
    text: f.str("text"),
    start: f.num("start"),
    end: f.num("end"),
    speaker: f.speaker(),
  }),
  "caption.final": (f, seq) => {
    const out: CaptionFinalMessage = {
      type: "caption.final",
      seq,
      segment: f.int("segment"),
      text: f.str("text"),
      start: f.num("start"),
      end: f.num("end"),
      speaker: f.speaker(),
    };
    const w = words(f);
    if (w !== undefined) out.words = w;
    return out;
  },
  "speaker.merged": (f, seq) => ({ type: "speaker.merged", seq, merged: f.str("merged"), into: f.str("into") }),
  "turn.started": (f, seq) => {
    const out: TurnStartedMessage = { type: "turn.started", seq, turn_id: f.str("turn_id"), input: f.str("input") };
    const inputId = f.optStr("input_id");
    if (inputId !== undefined) out.input_id = inputId;
    return out;
  },
  token: (f, seq) => ({ type: "token", seq, turn_id: f.str("turn_id"), text: f.str("text") }),
  "tool.call": (f, seq) => ({
    type: "tool.call",
    seq,
    turn_id: f.str("turn_id"),
    call_id: f.str("call_id"),
    name: f.str("name"),
    arguments: f.map("arguments"),
  }),
  "tool.result": (f, seq) => {
    const out: ToolResultMessage = {
      type: "tool.result",
      seq,
      turn_id: f.str("turn_id"),
      call_id: f.str("call_id"),
      ok: f.bool("ok"),
    };
    if (f.has("result")) out.result = f.m["result"];
    if (f.has("error") && f.m["error"] !== null) {
      const e = f.sub("error");
      out.error = { code: e.str("code"), message: e.str("message") };
    }
    return out;
  },
  "turn.done": (f, seq) => {
    const usage = f.sub("usage");
    const out: TurnDoneMessage = {
      type: "turn.done",
      seq,
      turn_id: f.str("turn_id"),
      status: f.str("status"),
      usage: { input_tokens: usage.int("input_tokens"), output_tokens: usage.int("output_tokens") },
      timings: numberMap(f, "timings"),
    };
    const reason = f.optStr("reason");
    if (reason !== undefined) out.reason = reason;
    return out;
  },
  error: (f, seq) => {
    const out: ErrorMessage = { type: "error", code: f.str("code"), message: f.str("message"), fatal: f.bool("fatal") };
    if (seq > 0) out.seq = seq;
    return out;
  },
  pong: (f) => ({ type: "pong", id: f.m["id"] ?? null, server_time: f.num("server_time") }),
  goaway: (f) => ({ type: "goaway", reason: f.str("reason"), reconnect_after_ms: f.int("reconnect_after_ms") }),
};

export function isKnownType(type: string): boolean {
  return Object.prototype.hasOwnProperty.call(PARSERS, type);
}

/**
 * The typed message for a decoded map of a known `type`. `seq` has already been
 * checked by the caller (0 for messages without one). Throws ProtocolViolation.
 */
export function parseServerMessage(type: string, m: WireMap, seq: number): ServerMessage {
  const parser = isKnownType(type) ? PARSERS[type] : undefined;
  if (parser === undefined) throw new ProtocolViolation(`unknown message type ${JSON.stringify(type)}`);
  return parser(new Fields(m, type), seq);
}

/** `m.seq` when present: a safe integer ≥ 1, or a ProtocolViolation. */
export function readSeq(m: WireMap): number | undefined {
  const v = m["seq"];
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || (v as number) < 1) {
    throw new ProtocolViolation(`${String(m["type"])}.seq: expected integer ≥ 1`);
  }
  return v as number;
}
