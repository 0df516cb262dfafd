// What the client reports to the app: the server's messages, typed, and what the client
// itself notices (state changes, violations, dropped audio).

import type { AudioGap } from "./audio-outbox.js";
import type { ConnectionState } from "./connection-state.js";
import type {
  CaptionFinalMessage,
  CaptionPartialMessage,
  GoawayMessage,
  SpeakerMergedMessage,
  SpeechMessage,
  ToolCallMessage,
  ToolResultMessage,
  TokenMessage,
  TurnDoneMessage,
  TurnStartedMessage,
  WelcomeMessage,
  WireMap,
} from "./messages.js";

export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
  /** The close code and reason of the connection that ended, when one did. */
  closeCode?: number;
  closeReason?: string;
}

/**
 * Codes of errors the client raises itself (`source: "client"`); server errors keep
 * the server's code (PROTOCOL.md, "Errors and close codes").
 */
export type ClientErrorCode =
  /** The server sent something off the protocol; the message was dropped. */
  | "protocol_violation"
  /** A durable event skipped a seq: the client reconnects and resumes to fill the gap. */
  | "seq_gap"
  /** No `welcome` within the handshake timeout: the client reconnects. */
  | "handshake_timeout"
  /** 2 × heartbeat_s without a frame from the server: the client reconnects. */
  | "heartbeat_timeout"
  /** The audio buffer bound dropped audio no connection had taken. */
  | "audio_overflow"
  /** A resume was answered by a fresh session: earlier state is gone. */
  | "session_replaced"
  /** No connection succeeded in `maxConnectAttempts` tries (fatal). */
  | "connect_failed"
  /** The session's resume_ttl_s ran out while reconnecting (fatal). */
  | "resume_expired"
  /** Fatal close codes without a preceding error message. */
  | "unauthorized"
  | "protocol_error"
  | "resume_failed"
  | "superseded"
  | "quota_exceeded";

export interface ParleyError {
  source: "server" | "client";
  code: ClientErrorCode | (string & {});
  message: string;
  /** True when the client has stopped for good because of it. */
  fatal: boolean;
  /** The seq of a durable server error. */
  seq?: number;
}

export interface PongEvent {
  id: unknown;
  server_time: number;
  /** Round trip of the matching ping, when it was one of ours. */
  rtt_ms: number | null;
}

export interface ParleyEvents {
  state: StateChange;
  welcome: WelcomeMessage;
  "speech.started": SpeechMessage;
  "speech.stopped": SpeechMessage;
  "caption.partial": CaptionPartialMessage;
  "caption.final": CaptionFinalMessage;
  "speaker.merged": SpeakerMergedMessage;
  "turn.started": TurnStartedMessage;
  token: TokenMessage;
  "tool.call": ToolCallMessage;
  "tool.result": ToolResultMessage;
  "turn.done": TurnDoneMessage;
  pong: PongEvent;
  goaway: GoawayMessage;
  error: ParleyError;
  /** Audio chunks `[from, to)` the server will never receive. */
  "audio.dropped": AudioGap;
  /** A message of a type this client does not know (a newer server), passed on as is. */
  unknown: WireMap;
}

export type ParleyEventType = keyof ParleyEvents;

/** One event as a tagged value: `{type: "token", data: TokenMessage}`. */
export type ParleyEvent = { [K in ParleyEventType]: { type: K; data: ParleyEvents[K] } }[ParleyEventType];
