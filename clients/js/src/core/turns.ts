// Agent turns as the client sees them (PROTOCOL.md, "Ordering"): turn.started, then its
// tokens and tool events, then turn.done, after which nothing of that turn may follow.

import type {
  ToolCallMessage,
  ToolResultMessage,
  TurnDoneMessage,
  TurnInput,
  TurnMessage,
  TurnStartedMessage,
} from "./messages.js";

export interface Turn {
  readonly turnId: string;
  input: TurnInput | null;
  inputId: string | null;
  /** The generated text so far: the token deltas concatenated. */
  text: string;
  toolCalls: ToolCallMessage[];
  toolResults: ToolResultMessage[];
  done: TurnDoneMessage | null;
}

export type TurnVerdict =
  | { accepted: true; turn: Turn }
  | { accepted: false; why: string };

export class TurnTracker {
  private readonly running = new Map<string, Turn>();
  // Finished turns, oldest first, kept so that late events can be recognised and the
  // app can still read a finished turn; bounded so a long session stays small.
  private readonly finished = new Map<string, Turn>();

  constructor(readonly keepFinished = 256) {}

  get(turnId: string): Turn | undefined {
    return this.running.get(turnId) ?? this.finished.get(turnId);
  }

  /** Turns started and not yet done, oldest first. */
  active(): Turn[] {
    return [...this.running.values()];
  }

  /** Applies one event of a turn, or says why it must be ignored. */
  admit(msg: TurnMessage): TurnVerdict {
    if (this.finished.has(msg.turn_id)) {
      return { accepted: false, why: `${msg.type} after turn.done of turn ${msg.turn_id}` };
    }
    let turn = this.running.get(msg.turn_id);
    if (msg.type === "turn.started") {
      if (turn !== undefined) return { accepted: false, why: `second turn.started of turn ${msg.turn_id}` };
      turn = this.open(msg.turn_id);
      this.start(turn, msg);
      return { accepted: true, turn };
    }
    // A client restored from saved state resumes into turns it never saw start.
    turn ??= this.open(msg.turn_id);
    switch (msg.type) {
      case "token":
        turn.text += msg.text;
        break;
      case "tool.call":
        turn.toolCalls.push(msg);
        break;
      case "tool.result":
        turn.toolResults.push(msg);
        break;
      case "turn.done":
        turn.done = msg;
        this.running.delete(msg.turn_id);
        this.finished.set(msg.turn_id, turn);
        if (this.finished.size > this.keepFinished) {
          const oldest = this.finished.keys().next().value as string;
          this.finished.delete(oldest);
        }
        break;
    }
    return { accepted: true, turn };
  }

  reset(): void {
    this.running.clear();
    this.finished.clear();
  }

  private open(turnId: string): Turn {
    const turn: Turn = { turnId, input: null, inputId: null, text: "", toolCalls: [], toolResults: [], done: null };
    this.running.set(turnId, turn);
    return turn;
  }

  private start(turn: Turn, msg: TurnStartedMessage): void {
    turn.input = msg.input;
    turn.inputId = msg.input_id ?? null;
  }
}
