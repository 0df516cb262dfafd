// Application-level liveness (PROTOCOL.md, "Heartbeats"): browsers cannot see WebSocket
// pings, so the client sends `ping` every heartbeat_s and calls a connection dead after
// 2 × heartbeat_s without any frame from the server.

const KEEP_PINGS = 8; // unanswered pings remembered for round-trip times

export class Heartbeat {
  private intervalMs = 15_000;
  private lastHeardAt = 0;
  private nextPingAt = 0;
  private lastId = 0;
  private readonly sentAt = new Map<number, number>();

  /** A new connection went live at `now` with the server's heartbeat_s. */
  start(now: number, heartbeatS: number): void {
    this.intervalMs = heartbeatS * 1000;
    this.lastHeardAt = now;
    this.nextPingAt = now + this.intervalMs;
    this.sentAt.clear();
  }

  /** Any frame from the server, even an undecodable one, shows the connection lives. */
  heard(now: number): void {
    this.lastHeardAt = now;
  }

  get deadAt(): number {
    return this.lastHeardAt + 2 * this.intervalMs;
  }

  get pingAt(): number {
    return this.nextPingAt;
  }

  /** The id of the ping to send now. */
  ping(now: number): number {
    this.lastId += 1;
    this.sentAt.set(this.lastId, now);
    if (this.sentAt.size > KEEP_PINGS) this.sentAt.delete(this.sentAt.keys().next().value as number);
    this.nextPingAt = now + this.intervalMs;
    return this.lastId;
  }

  /** The round trip of the ping `id` answers, or null when it is not one of ours. */
  pong(id: unknown, now: number): number | null {
    if (typeof id !== "number") return null;
    const sent = this.sentAt.get(id);
    if (sent === undefined) return null;
    this.sentAt.delete(id);
    return now - sent;
  }
}
