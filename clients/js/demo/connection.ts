// The connection side of the demo: short-lived tokens for each connection, the stream's
// address, and the level of a chunk of microphone audio.

export async function fetchToken(key: string): Promise<string> {
  const res = await fetch("/v1/tokens", { method: "POST", headers: { Authorization: `Bearer ${key}` } });
  if (!res.ok) throw new Error(res.status === 401 ? "the API key was refused" : `HTTP ${res.status}`);
  const body: unknown = await res.json();
  const token = (body as { token?: unknown }).token;
  if (typeof token !== "string") throw new Error("no token in the answer");
  return token;
}

export function streamUrl(): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/stream`;
}

/** A token per connection: first the one fetched to check the key, then a fresh one each time. */
export class Tokens {
  /** When the current connection attempt began (its token was asked for). */
  attemptAt: number;

  constructor(
    private readonly key: string,
    private spare: string | null,
    startedAt: number,
  ) {
    this.attemptAt = startedAt;
  }

  async next(): Promise<string> {
    if (this.spare !== null) {
      const token = this.spare;
      this.spare = null;
      return token;
    }
    this.attemptAt = performance.now();
    return fetchToken(this.key);
  }
}

/** The chunk's peak level, 0–1, for the meter. */
export function peakLevel(pcm: Uint8Array): number {
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  let peak = 0;
  for (let i = 0; i + 1 < pcm.byteLength; i += 2) peak = Math.max(peak, Math.abs(view.getInt16(i, true)));
  return peak / 32768;
}
