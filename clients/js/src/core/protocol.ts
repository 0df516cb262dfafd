// The client side of PROTOCOL.md without I/O: frames and the time in, frames, socket
// actions and events out. It never reads a clock or touches a socket, so the same code
// runs in browsers, React Native and Node, and tests drive it as plain calls.

import type { AudioStats } from "./audio-outbox.js";
import { CaptionTracker } from "./captions.js";
import { DecodeError, type Codec, type Frame } from "./codec.js";
import { PhaseMachine, publicState, type ConnectionState } from "./connection-state.js";
import type { ParleyError, ParleyEvent, StateChange } from "./events.js";
import { Heartbeat } from "./heartbeat.js";
import { route } from "./inbound.js";
import { Outbound, UsageError, type Action } from "./outbound.js";
import {
  DURABLE_TYPES,
  ProtocolViolation,
  isKnownType,
  parseServerMessage,
  readSeq,
  type ClientMessage,
  type ResumeState,
  type ServerMessage,
  type SessionConfig,
  type WelcomeMessage,
  type WireMap,
} from "./messages.js";
import { closeVerdict, backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy, type CloseVerdict } from "./policy.js";
import { AckSchedule, SeqTracker } from "./seq.js";
import { TurnTracker, type Turn } from "./turns.js";

export { UsageError, type Action };

export interface CoreOptions {
  /** Config for a new session (`hello.session`). */
  session?: SessionConfig;
  /** Saved state to resume a session with (e.g. after a page reload). */
  resume?: ResumeState | null;
  /** Ack after this many durable events (default 20)… */
  ackEvery?: number;
  /** …or this long after the first unacknowledged one (default 1000 ms). */
  ackAfterMs?: number;
  /** Bound of the audio kept for re-sending, in ms of session audio (default 30 000). */
  audioBufferMs?: number;
  /** Time from asking for a socket to `welcome` (default 10 000 ms). */
  handshakeTimeoutMs?: number;
  backoff?: BackoffPolicy;
  /** Tries before giving up while no connection of this client has reached `welcome` yet (default 8). */
  maxConnectAttempts?: number;
  /** Bound of the messages (text, cancel, update, audio.end) queued while not connected (default 64). */
  maxQueuedMessages?: number;
  keepFinishedTurns?: number;
  keepFinals?: number;
  /** [0, 1) random source for backoff jitter (default Math.random). */
  random?: () => number;
}

const GIVE_UP_CLOSE = 4000; // the client's own code for a connection it gives up on
export const CLIENT_NAME = "@parley/client";
export const CLIENT_VERSION = "0.1.0";

export class ProtocolCore {
  readonly turns: TurnTracker;
  readonly captions: CaptionTracker;
  private readonly machine = new PhaseMachine();
  private readonly seqs: SeqTracker;
  private readonly acks: AckSchedule;
  private readonly out: Outbound;
  private readonly opts: Required<Omit<CoreOptions, "session" | "resume">>;
  private config: SessionConfig;
  private session: { id: string; token: string } | null;
  private welcomeMsg: WelcomeMessage | null = null;
  private codec: Codec | null = null; // of the open socket, for decoding
  private resumedLive = false;
  private everLive = false;
  private failedAttempts = 0;
  private attemptStartedAt = 0;
  private detachedAt: number | null = null;
  private retryAt = 0;
  private readonly heartbeat = new Heartbeat();
  private goawayAfterMs: number | null = null;
  private lastErrorCode: string | null = null;
  private lastErrorMessage: string | null = null;
  private overflowReported = false;
  private events: ParleyEvent[] = [];
  private shownState: ConnectionState = "idle";
  /** Durable events dropped as duplicates (seq ≤ last_seq): normal after a resume race. */
  duplicates = 0;

  constructor(options: CoreOptions = {}) {
    this.opts = {
      ackEvery: options.ackEvery ?? 20,
      ackAfterMs: options.ackAfterMs ?? 1000,
      audioBufferMs: options.audioBufferMs ?? 30_000,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      maxConnectAttempts: options.maxConnectAttempts ?? 8,
      maxQueuedMessages: options.maxQueuedMessages ?? 64,
      keepFinishedTurns: options.keepFinishedTurns ?? 256,
      keepFinals: options.keepFinals ?? 1000,
      random: options.random ?? Math.random,
    };
    this.config = options.session ?? {};
    const resume = options.resume ?? null;
    this.session = resume && { id: resume.session_id, token: resume.resume_token };
    this.seqs = new SeqTracker(resume?.last_seq ?? 0);
    this.acks = new AckSchedule(this.opts.ackEvery, this.opts.ackAfterMs);
    const format = this.config.audio ?? {};
    const bytesPerMs = ((format.sample_rate ?? 16_000) * (format.channels ?? 1) * 2) / 1000;
    this.out = new Outbound(Math.ceil(this.opts.audioBufferMs * bytesPerMs), this.opts.maxQueuedMessages);
    this.turns = new TurnTracker(this.opts.keepFinishedTurns);
    this.captions = new CaptionTracker(this.opts.keepFinals);
  }

  // ---- what the app reads ----

  get state(): ConnectionState {
    return publicState(this.machine.phase, this.everLive, this.failedAttempts, this.resumedLive);
  }

  /** What a later `resume` needs, or null before the first welcome and after `bye`. */
  get resumeState(): ResumeState | null {
    return this.session && { session_id: this.session.id, resume_token: this.session.token, last_seq: this.seqs.lastSeq };
  }

  get lastSeq(): number {
    return this.seqs.lastSeq;
  }

  get welcome(): WelcomeMessage | null {
    return this.welcomeMsg;
  }

  get audioStats(): AudioStats {
    return this.out.audio.stats;
  }

  turn(turnId: string): Turn | undefined {
    return this.turns.get(turnId);
  }

  // ---- outputs, for the shell ----

  takeActions(): Action[] {
    return this.out.take();
  }

  takeEvents(): ParleyEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  /** When `tick` must next be called, or null when no timer is needed. */
  nextDeadline(): number | null {
    switch (this.machine.phase) {
      case "waiting":
        return this.retryAt;
      case "opening":
      case "handshaking":
        return this.attemptStartedAt + this.opts.handshakeTimeoutMs;
      case "live": {
        const due = [this.heartbeat.deadAt, this.heartbeat.pingAt];
        const ack = this.acks.dueAt();
        if (ack !== null) due.push(ack);
        return Math.min(...due);
      }
      default:
        return null;
    }
  }

  // ---- inputs from the shell ----

  start(now: number): void {
    if (this.machine.phase !== "idle") throw new UsageError(`start() in state ${this.state}`);
    this.openNow(now);
  }

  socketOpened(token: string, codec: Codec): void {
    if (this.machine.phase !== "opening") return;
    this.codec = codec;
    this.out.attach(codec);
    const hello: ClientMessage = { type: "hello", v: 1, token };
    if (this.session !== null) {
      hello.resume = { token: this.session.token, last_seq: this.seqs.lastSeq };
    } else {
      hello.session = { ...this.config, client: { name: CLIENT_NAME, version: CLIENT_VERSION, ...this.config.client } };
    }
    this.out.send(hello);
    this.go("handshaking");
  }

  /** The socket could not be opened (or the token could not be had). */
  openFailed(now: number, reason: string): void {
    if (this.machine.phase !== "opening") return;
    this.lose(now, { kind: "reconnect", delayMs: null }, 1006, reason);
  }

  socketClosed(now: number, code: number, reason: string): void {
    const phase = this.machine.phase;
    if (phase !== "opening" && phase !== "handshaking" && phase !== "live") return;
    const verdict = closeVerdict({
      code,
      reason,
      goawayAfterMs: this.goawayAfterMs,
      lastErrorCode: this.lastErrorCode,
      lastErrorMessage: this.lastErrorMessage,
    });
    // The server refused the resume: the session (or its events) is gone, and so is any
    // use of resumeState, which an app may have saved to try again.
    if (code === 4004) this.session = null;
    this.lose(now, verdict, code, reason);
  }

  receive(frame: Frame, now: number): void {
    const phase = this.machine.phase;
    if (phase !== "handshaking" && phase !== "live") return;
    this.heartbeat.heard(now);
    let m: WireMap;
    try {
      m = this.codec!.decode(frame);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.violation(err.message);
      return;
    }
    this.handle(m, now);
  }

  tick(now: number): void {
    const phase = this.machine.phase;
    if (phase === "waiting" && now >= this.retryAt) {
      const ttlMs = (this.welcomeMsg?.resume_ttl_s ?? Infinity) * 1000;
      if (this.session !== null && this.detachedAt !== null && now - this.detachedAt >= ttlMs) {
        this.stop({ code: "resume_expired", message: "the session's resume window has passed" });
      } else {
        this.openNow(now);
      }
    } else if ((phase === "opening" || phase === "handshaking") && now >= this.attemptStartedAt + this.opts.handshakeTimeoutMs) {
      this.giveUpConnection(now, "handshake_timeout", "no welcome in time");
    } else if (phase === "live") {
      if (now >= this.heartbeat.deadAt) {
        this.giveUpConnection(now, "heartbeat_timeout", "server silent for 2 × heartbeat_s");
        return;
      }
      if (now >= this.heartbeat.pingAt) this.out.send({ type: "ping", id: this.heartbeat.ping(now) });
      const ackDue = this.acks.dueAt();
      if (ackDue !== null && now >= ackDue) this.ack();
    }
  }

  // ---- commands from the app ----

  sendAudio(data: Uint8Array): void {
    this.checkOpen();
    const limit = this.welcomeMsg?.limits.max_frame_bytes;
    if (limit !== undefined && data.byteLength + 64 > limit) {
      throw new UsageError(`audio chunk of ${data.byteLength} bytes exceeds max_frame_bytes ${limit}`);
    }
    const droppedUnsent = this.out.pushAudio(data, this.machine.phase === "live");
    if (droppedUnsent > 0 && !this.overflowReported) {
      this.overflowReported = true;
      this.clientError("audio_overflow", `audio buffer full (${this.opts.audioBufferMs} ms): dropping the oldest`);
    }
  }

  endAudio(): void {
    this.control({ type: "audio.end" });
  }

  sendText(text: string, id?: string): void {
    const limit = this.welcomeMsg?.limits.max_text_chars;
    if (limit !== undefined && text.length > limit) {
      throw new UsageError(`text of ${text.length} chars exceeds max_text_chars ${limit}`);
    }
    this.control(id === undefined ? { type: "text", text } : { type: "text", text, id });
  }

  cancel(turnId?: string): void {
    this.control(turnId === undefined ? { type: "cancel" } : { type: "cancel", turn_id: turnId });
  }

  update(session: SessionConfig): void {
    // Kept for a fresh session too, should a resume ever be answered by one.
    const merged: SessionConfig = { ...this.config, ...session };
    if (this.config.audio !== undefined && session.audio !== undefined) merged.audio = { ...this.config.audio, ...session.audio };
    this.config = merged;
    this.control({ type: "update", session });
  }

  /** Ends the session for good. */
  bye(): void {
    if (this.machine.phase === "closed") return;
    if (this.machine.phase === "live") this.out.send({ type: "bye" });
    this.session = null;
    this.closeSocket(1000, "bye");
    this.stop(null);
  }

  /** Drops the connection but not the session: `resumeState` can resume it later. */
  disconnect(): void {
    if (this.machine.phase === "closed") return;
    this.closeSocket(1000, "detached");
    this.stop(null);
  }

  // ---- internals ----

  private handle(m: WireMap, now: number): void {
    const type = m["type"] as string;
    if (this.machine.phase === "handshaking") {
      if (type === "welcome") this.parse(m, 0, (msg) => this.onWelcome(msg as WelcomeMessage, now));
      else if (type === "error" || type === "pong" || type === "goaway") this.parse(m, 0, (msg) => this.onControl(msg, now));
      else this.violation(`${type} before welcome`);
      return;
    }
    if (type === "welcome") return this.violation("second welcome");
    let seq: number | undefined;
    try {
      seq = readSeq(m);
    } catch (err) {
      return this.violation((err as Error).message);
    }
    if (seq === undefined && DURABLE_TYPES.has(type)) return this.violation(`${type} without seq`);
    if (seq !== undefined) {
      const verdict = this.seqs.classify(seq);
      if (verdict === "duplicate") {
        this.duplicates += 1;
        return;
      }
      if (verdict === "gap") {
        // Resuming from last_seq makes the server replay what was skipped (or say it can't).
        this.giveUpConnection(now, "seq_gap", `seq ${seq} after ${this.seqs.lastSeq}`);
        return;
      }
      this.seqs.accept(seq);
      if (this.acks.note(now)) this.ack();
    }
    if (!isKnownType(type)) {
      this.events.push({ type: "unknown", data: m });
      return;
    }
    this.parse(m, seq ?? 0, (msg) => {
      const routed = route(msg, this.turns, this.captions);
      if (routed.kind === "event") this.events.push(routed.event);
      else if (routed.kind === "violation") this.violation(routed.why);
      else if (routed.kind === "control") this.onControl(msg, now);
    });
  }

  private parse(m: WireMap, seq: number, then: (msg: ServerMessage) => void): void {
    let msg: ServerMessage;
    try {
      msg = parseServerMessage(m["type"] as string, m, seq);
    } catch (err) {
      if (!(err instanceof ProtocolViolation)) throw err;
      return this.violation(err.message);
    }
    then(msg);
  }

  private onControl(msg: ServerMessage, now: number): void {
    if (msg.type === "error") {
      if (msg.fatal) {
        this.lastErrorCode = msg.code;
        this.lastErrorMessage = msg.message;
      }
      const e: ParleyError = { source: "server", code: msg.code, message: msg.message, fatal: msg.fatal };
      if (msg.seq !== undefined) e.seq = msg.seq;
      this.events.push({ type: "error", data: e });
    } else if (msg.type === "pong") {
      const rtt = this.heartbeat.pong(msg.id, now);
      this.events.push({ type: "pong", data: { id: msg.id, server_time: msg.server_time, rtt_ms: rtt } });
    } else if (msg.type === "goaway") {
      this.goawayAfterMs = msg.reconnect_after_ms;
      this.events.push({ type: "goaway", data: msg });
    }
  }

  private onWelcome(w: WelcomeMessage, now: number): void {
    const askedResume = this.session !== null;
    const resumed = askedResume && w.resumed;
    if (resumed) {
      if (w.session_id !== this.session!.id) this.violation(`resumed session ${w.session_id}, asked for ${this.session!.id}`);
      if (w.last_seq < this.seqs.lastSeq) this.violation(`welcome.last_seq ${w.last_seq} < last seen ${this.seqs.lastSeq}`);
    } else {
      if (askedResume) this.clientError("session_replaced", "resume answered by a new session");
      this.turns.reset();
      this.captions.reset();
      this.seqs.reset(w.last_seq);
    }
    this.session = { id: w.session_id, token: w.resume_token };
    this.welcomeMsg = w;
    this.acks.reset(this.seqs.lastSeq);
    this.failedAttempts = 0;
    this.detachedAt = null;
    this.everLive = true;
    this.resumedLive = resumed;
    this.overflowReported = false;
    this.heartbeat.start(now, w.heartbeat_s);
    this.events.push({ type: "welcome", data: w });
    this.go("live");
    const gap = this.out.welcomed(w.audio_next, resumed);
    if (gap !== null) this.events.push({ type: "audio.dropped", data: gap });
  }

  private control(msg: ClientMessage): void {
    this.checkOpen();
    this.out.control(msg, this.machine.phase === "live");
  }

  private ack(): void {
    const seq = this.acks.take(this.seqs.lastSeq);
    if (seq !== null) this.out.send({ type: "ack", seq });
  }

  private openNow(now: number): void {
    this.attemptStartedAt = now;
    this.go("opening");
    this.out.open();
  }

  /** The client ends a connection itself (dead, stuck, or out of step) and retries. */
  private giveUpConnection(now: number, code: "handshake_timeout" | "heartbeat_timeout" | "seq_gap", message: string): void {
    this.clientError(code, message);
    this.closeSocket(GIVE_UP_CLOSE, code);
    this.lose(now, { kind: "reconnect", delayMs: null }, GIVE_UP_CLOSE, code);
  }

  private lose(now: number, verdict: CloseVerdict, code: number, reason: string): void {
    if (this.machine.phase === "live") this.detachedAt = now;
    this.codec = null;
    this.out.detach();
    this.goawayAfterMs = null;
    this.lastErrorCode = null;
    this.lastErrorMessage = null;
    if (verdict.kind === "stop") {
      return this.stop(verdict.code === null ? null : { code: verdict.code, message: verdict.message }, code, reason);
    }
    this.failedAttempts += 1;
    if (!this.everLive && this.failedAttempts >= this.opts.maxConnectAttempts) {
      return this.stop({ code: "connect_failed", message: `${this.failedAttempts} connection attempts failed` }, code, reason);
    }
    const backoff = backoffDelay(this.failedAttempts - 1, this.opts.backoff, this.opts.random);
    const delay = verdict.delayMs ?? Math.max(verdict.atLeastMs ?? 0, backoff);
    this.retryAt = now + delay;
    this.go("waiting", code, reason);
    if (delay <= 0) this.openNow(now);
  }

  private stop(error: { code: string; message: string } | null, code?: number, reason?: string): void {
    if (error !== null) this.events.push({ type: "error", data: { source: "client", ...error, fatal: true } });
    this.go("closed", code, reason);
  }

  private closeSocket(code: number, reason: string): void {
    const phase = this.machine.phase;
    if (phase === "opening" || phase === "handshaking" || phase === "live") {
      this.out.abort(code, reason);
    }
  }

  private go(phase: Parameters<PhaseMachine["go"]>[0], closeCode?: number, closeReason?: string): void {
    this.machine.go(phase);
    const state = this.state;
    if (state === this.shownState) return;
    const change: StateChange = { state, previous: this.shownState };
    if (closeCode !== undefined) change.closeCode = closeCode;
    if (closeReason !== undefined) change.closeReason = closeReason;
    this.shownState = state;
    this.events.push({ type: "state", data: change });
  }

  private checkOpen(): void {
    if (this.machine.phase === "closed") throw new UsageError("the client is closed");
  }

  private violation(why: string): void {
    this.clientError("protocol_violation", why);
  }

  private clientError(code: ParleyError["code"], message: string): void {
    this.events.push({ type: "error", data: { source: "client", code, message, fatal: false } });
  }
}
