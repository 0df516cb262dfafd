// What to do when a connection ends (PROTOCOL.md, "Errors and close codes"), and how long
// to wait before the next try. Pure functions: the core passes in what it knows.

export interface BackoffPolicy {
  /** Delay before the first retry, before jitter. */
  baseMs: number;
  /** The cap of the exponential growth. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 250, maxMs: 15_000 };

/**
 * "Equal jitter": half the exponential delay for sure, the other half at random, so a
 * fleet of clients cut off at once does not come back at once, and none retries in a
 * tight loop. `attempt` counts from 0; `random` returns [0, 1).
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + random() * (exp / 2));
}

export type CloseVerdict =
  /** Retry after `delayMs`, or when it is null after the backoff delay (at least `atLeastMs`). */
  | { kind: "reconnect"; delayMs: number | null; atLeastMs?: number }
  /** Stop; surface `code` as a fatal error unless it is null (a normal end). */
  | { kind: "stop"; code: string | null; message: string };

export interface CloseFacts {
  code: number;
  reason: string;
  /** `reconnect_after_ms` of a `goaway` received on this connection, if any. */
  goawayAfterMs: number | null;
  /** Code of the last fatal `error` the server sent on this connection, if any. */
  lastErrorCode: string | null;
  /** Its message: it says why better than a close reason, which is only the code again. */
  lastErrorMessage?: string | null;
}

/** A `rate_limited`/`overloaded` close is retried, but never sooner than this. */
export const MIN_RETRY_AFTER_4029_MS = 5_000;

export function closeVerdict(f: CloseFacts): CloseVerdict {
  const said = (fallback: string): string => f.lastErrorMessage || f.reason || fallback;
  switch (f.code) {
    case 1000:
      return { kind: "stop", code: null, message: said("session ended") };
    case 1001:
      // Draining: come back when told to, probably to another node.
      return { kind: "reconnect", delayMs: f.goawayAfterMs };
    case 4001:
      return { kind: "stop", code: f.lastErrorCode ?? "unauthorized", message: said("authentication failed") };
    case 4003:
      return { kind: "stop", code: f.lastErrorCode ?? "protocol_error", message: said("protocol error") };
    case 4004:
      // Unknown, expired or used token, or events gone: resuming again cannot work.
      return {
        kind: "stop",
        code: f.lastErrorCode ?? "resume_failed",
        message: `the session cannot be resumed (${said("resume failed")}); start a new session`,
      };
    case 4008:
      // Slow consumer: the session is intact and resuming is how to catch up.
      return { kind: "reconnect", delayMs: 0 };
    case 4009:
      // Another connection took the session over: fighting it would only ping-pong.
      return { kind: "stop", code: "superseded", message: said("superseded by a newer connection") };
    case 4029:
      if (f.lastErrorCode === "quota_exceeded") {
        return { kind: "stop", code: "quota_exceeded", message: said("quota exceeded") };
      }
      return { kind: "reconnect", delayMs: null, atLeastMs: MIN_RETRY_AFTER_4029_MS };
    default:
      // 1006 (network), 1009, 1011 and anything unknown: the session may be intact.
      return { kind: "reconnect", delayMs: f.goawayAfterMs };
  }
}
