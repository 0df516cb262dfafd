// The connection's life as a state machine kept as data: a table of allowed transitions,
// and the public state an app observes, derived from it.

export type Phase =
  /** Not started. */
  | "idle"
  /** Between connections, until the retry time. */
  | "waiting"
  /** A socket was asked for and has not opened yet. */
  | "opening"
  /** `hello` sent, no `welcome` yet. */
  | "handshaking"
  /** `welcome` received: messages flow. */
  | "live"
  /** For good: after `bye`, a fatal close, or `disconnect()`. */
  | "closed";

const TRANSITIONS: Readonly<Record<Phase, readonly Phase[]>> = {
  idle: ["opening", "closed"],
  waiting: ["opening", "closed"],
  opening: ["handshaking", "waiting", "closed"],
  handshaking: ["live", "waiting", "closed"],
  live: ["waiting", "closed"],
  closed: [],
};

/** What an app sees. "resumed" is live after a resume; "connected" live in a fresh session. */
export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "resumed" | "closed";

export class IllegalTransition extends Error {
  override readonly name = "IllegalTransition";
}

export class PhaseMachine {
  private current: Phase = "idle";

  get phase(): Phase {
    return this.current;
  }

  /** Moves to `next`; an illegal move throws and changes nothing. */
  go(next: Phase): void {
    if (!TRANSITIONS[this.current].includes(next)) {
      throw new IllegalTransition(`${this.current} → ${next}`);
    }
    this.current = next;
  }

  can(next: Phase): boolean {
    return TRANSITIONS[this.current].includes(next);
  }
}

export function publicState(phase: Phase, everLive: boolean, failedAttempts: number, resumed: boolean): ConnectionState {
  switch (phase) {
    case "idle":
    case "closed":
      return phase;
    case "live":
      return resumed ? "resumed" : "connected";
    default:
      return everLive || failedAttempts > 0 ? "reconnecting" : "connecting";
  }
}
