// The socket shell around ProtocolCore: it owns the WebSocket, the one timer and the
// clock, does what the core asks (open, send, close) and hands the core's events to
// listeners. Every decision (reconnect, resume, heartbeats, acks) is the core's.

import { codecFor, JSON_PROTOCOL, MSGPACK, type Frame } from "../core/codec.js";
import type { ConnectionState } from "../core/connection-state.js";
import { Emitter, type Listener } from "../core/emitter.js";
import type { ParleyEvents } from "../core/events.js";
import type { ResumeState, SessionConfig, WelcomeMessage } from "../core/messages.js";
import { ProtocolCore, UsageError, type Action, type CoreOptions } from "../core/protocol.js";
import type { AudioStats } from "../core/audio-outbox.js";
import type { CaptionTracker } from "../core/captions.js";
import type { Turn } from "../core/turns.js";

/** The part of the WebSocket API the client uses (browsers, React Native, `ws` in Node). */
export interface WebSocketLike {
  binaryType: string;
  readonly protocol: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/**
 * A WebSocket class: the global one, or `WebSocket` from the `ws` package. Typed loosely
 * because the DOM's and `ws`'s event types differ; the client uses only WebSocketLike.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => object;

export interface ClientOptions extends Omit<CoreOptions, "random"> {
  /** `wss://host/v1/stream` */
  url: string;
  /** An API key or ephemeral token, or a function that fetches a fresh one per connection. */
  token: string | (() => string | Promise<string>);
  /** Preferred sub-protocol (default "msgpack"); the other is offered as a fallback. */
  protocol?: "msgpack" | "json";
  /** In JSON mode, send audio as binary frames where the chunk index is implied (default false). */
  binaryAudio?: boolean;
  /** The WebSocket class; defaults to the global one (browsers, React Native, Node ≥ 22). */
  WebSocket?: WebSocketConstructor;
  /** A monotonic clock in ms (default performance.now). */
  clock?: () => number;
  random?: () => number;
}

function toFrame(data: unknown): Frame | null {
  if (typeof data === "string") return data;
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  // Node's `ws` may hand over a list of fragments.
  if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) {
    const parts = data as Uint8Array[];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }
  return null;
}

export class ParleyClient {
  private readonly core: ProtocolCore;
  private readonly emitter = new Emitter<ParleyEvents>();
  private readonly WS: WebSocketConstructor;
  private readonly clock: () => number;
  private readonly protocols: string[];
  private socket: WebSocketLike | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt: number | null = null;
  private pumping = false;
  private again = false;
  // Bumped by every open and close action, so that an open still waiting for its token
  // knows the core has moved on.
  private generation = 0;

  constructor(private readonly options: ClientOptions) {
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (WS === undefined) {
      throw new UsageError("no WebSocket here: pass one, e.g. `WebSocket` from the `ws` package");
    }
    this.WS = WS;
    this.clock = options.clock ?? (() => performance.now());
    this.protocols = options.protocol === "json" ? [JSON_PROTOCOL, MSGPACK] : [MSGPACK, JSON_PROTOCOL];
    const { url: _url, token: _token, protocol: _p, binaryAudio: _b, WebSocket: _w, clock: _c, ...core } = options;
    this.core = new ProtocolCore(core);
  }

  // ---- reading ----

  get state(): ConnectionState {
    return this.core.state;
  }

  get resumeState(): ResumeState | null {
    return this.core.resumeState;
  }

  get welcome(): WelcomeMessage | null {
    return this.core.welcome;
  }

  get captions(): CaptionTracker {
    return this.core.captions;
  }

  get audioStats(): AudioStats {
    return this.core.audioStats;
  }

  turn(turnId: string): Turn | undefined {
    return this.core.turn(turnId);
  }

  activeTurns(): Turn[] {
    return this.core.turns.active();
  }

  on<K extends keyof ParleyEvents>(type: K, fn: Listener<ParleyEvents[K]>): () => void {
    return this.emitter.on(type, fn);
  }

  once<K extends keyof ParleyEvents>(type: K, fn: Listener<ParleyEvents[K]>): () => void {
    return this.emitter.once(type, fn);
  }

  off<K extends keyof ParleyEvents>(type: K, fn: Listener<ParleyEvents[K]>): void {
    this.emitter.off(type, fn);
  }

  // ---- commands ----

  connect(): void {
    this.core.start(this.clock());
    this.pump();
  }

  /** 16 kHz mono PCM s16le (or the format of `session.audio`); buffered while offline. */
  sendAudio(pcm: Uint8Array): void {
    this.core.sendAudio(pcm);
    this.pump();
  }

  endAudio(): void {
    this.core.endAudio();
    this.pump();
  }

  sendText(text: string, id?: string): void {
    this.core.sendText(text, id);
    this.pump();
  }

  cancel(turnId?: string): void {
    this.core.cancel(turnId);
    this.pump();
  }

  update(session: SessionConfig): void {
    this.core.update(session);
    this.pump();
  }

  /** Ends the session; it cannot be resumed afterwards. */
  bye(): void {
    this.core.bye();
    this.pump();
  }

  /** Closes the connection but keeps the session resumable (see `resumeState`). */
  disconnect(): void {
    this.core.disconnect();
    this.pump();
  }

  // ---- the loop ----

  // Runs the core's actions and events until none are left. Listeners may call back into
  // the client; such calls only mark another round, so actions keep their order.
  private pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        for (const action of this.core.takeActions()) this.perform(action);
        for (const event of this.core.takeEvents()) this.emitter.emit(event.type, event.data as never);
      } while (this.again);
    } finally {
      this.pumping = false;
    }
    this.arm();
  }

  private perform(action: Action): void {
    switch (action.type) {
      case "open":
        this.generation += 1;
        void this.open(this.generation);
        break;
      case "send":
        try {
          this.socket?.send(action.frame);
        } catch {
          // The socket is closing; its close event tells the core.
        }
        break;
      case "close":
        this.drop(action.code, action.reason);
        break;
    }
  }

  private async open(generation: number): Promise<void> {
    let token: string;
    try {
      token = typeof this.options.token === "string" ? this.options.token : await this.options.token();
    } catch (err) {
      if (generation !== this.generation) return;
      this.core.openFailed(this.clock(), `token: ${String(err)}`);
      this.pump();
      return;
    }
    if (generation !== this.generation) return;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.options.url, this.protocols) as WebSocketLike;
    } catch (err) {
      this.core.openFailed(this.clock(), String(err));
      this.pump();
      return;
    }
    ws.binaryType = "arraybuffer";
    this.socket = ws;
    const mine = (): boolean => this.socket === ws;
    ws.onopen = () => {
      if (!mine()) return;
      this.core.socketOpened(token, codecFor(ws.protocol, this.options.binaryAudio ?? false));
      this.pump();
    };
    ws.onmessage = (ev) => {
      if (!mine()) return;
      const frame = toFrame(ev.data);
      // A Blob would mean binaryType was ignored; the core reports it as undecodable.
      this.core.receive(frame ?? "", this.clock());
      this.pump();
    };
    ws.onclose = (ev) => {
      if (!mine()) return;
      this.socket = null;
      this.core.socketClosed(this.clock(), ev.code, ev.reason);
      this.pump();
    };
    ws.onerror = () => {
      // Always followed by a close event, which carries what the core needs.
    };
  }

  /** Closes the current socket, which the core has already given up on. */
  private drop(code: number, reason: string): void {
    this.generation += 1;
    const ws = this.socket;
    if (ws === null) return;
    this.socket = null;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    try {
      ws.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  private arm(): void {
    const at = this.core.nextDeadline();
    if (at === this.timerAt) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (at === null) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.timerAt = null;
        this.core.tick(this.clock());
        this.pump();
      },
      Math.max(0, at - this.clock()),
    );
  }
}
