// Where a checked server message meets the client's turn and caption state.

import type { CaptionTracker } from "./captions.js";
import type { ParleyEvent } from "./events.js";
import type { ServerMessage } from "./messages.js";
import type { TurnTracker } from "./turns.js";

export type Routed =
  | { kind: "event"; event: ParleyEvent }
  /** Dropped without a word: a stale partial is normal under replacement. */
  | { kind: "ignored" }
  /** Dropped, and the server broke the protocol by sending it. */
  | { kind: "violation"; why: string }
  /** Not content: handled by the core (welcome, error, pong, goaway). */
  | { kind: "control" };

export function route(msg: ServerMessage, turns: TurnTracker, captions: CaptionTracker): Routed {
  switch (msg.type) {
    case "speech.started":
    case "speech.stopped":
      return { kind: "event", event: { type: msg.type, data: msg } };
    case "caption.partial":
      return captions.partial(msg) ? { kind: "event", event: { type: msg.type, data: msg } } : { kind: "ignored" };
    case "caption.final":
      return captions.final(msg)
        ? { kind: "event", event: { type: msg.type, data: msg } }
        : { kind: "violation", why: `second caption.final of segment ${msg.segment}` };
    case "speaker.merged":
      return { kind: "event", event: { type: msg.type, data: msg } };
    case "turn.started":
    case "token":
    case "tool.call":
    case "tool.result":
    case "turn.done": {
      const verdict = turns.admit(msg);
      if (!verdict.accepted) return { kind: "violation", why: verdict.why };
      // The union is narrowed per case by TypeScript only through this cast.
      return { kind: "event", event: { type: msg.type, data: msg } as ParleyEvent };
    }
    default:
      return { kind: "control" };
  }
}
