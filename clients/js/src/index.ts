// @parley/client: the client side of the Parley wire protocol (docs/js-client.md).

export { ParleyClient, type ClientOptions, type WebSocketConstructor, type WebSocketLike } from "./socket/client.js";
export { ProtocolCore, UsageError, CLIENT_NAME, CLIENT_VERSION, type Action, type CoreOptions } from "./core/protocol.js";
export {
  codecFor,
  DecodeError,
  JsonCodec,
  MsgpackCodec,
  JSON_PROTOCOL,
  MSGPACK,
  type Codec,
  type Frame,
  type Subprotocol,
} from "./core/codec.js";
export type { ConnectionState } from "./core/connection-state.js";
export { Emitter, type Listener } from "./core/emitter.js";
export type {
  ClientErrorCode,
  ParleyError,
  ParleyEvent,
  ParleyEventType,
  ParleyEvents,
  PongEvent,
  StateChange,
} from "./core/events.js";
export type { AudioGap, AudioStats } from "./core/audio-outbox.js";
export type { CaptionTracker } from "./core/captions.js";
export type { Turn } from "./core/turns.js";
export { backoffDelay, closeVerdict, DEFAULT_BACKOFF, type BackoffPolicy, type CloseVerdict } from "./core/policy.js";
export { ProtocolViolation } from "./core/messages.js";
export type * from "./core/messages.js";
