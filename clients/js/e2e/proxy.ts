// A TCP relay between the browser and the server that the test can cut: every open
// connection is destroyed at once, as a lost network would do, while the listener stays
// up so that the page can reconnect through it.

import { createServer, connect, type Server, type Socket } from "node:net";

export class CuttableProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private target: { host: string; port: number } | null = null;
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(private readonly server: Server, readonly port: number) {}

  /** Listens on a free loopback port; `forward` names the server once it is known. */
  static async listen(): Promise<CuttableProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("the proxy has no port");
    const proxy = new CuttableProxy(server, address.port);
    server.on("connection", (client) => proxy.relay(client));
    return proxy;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  forward(host: string, port: number): void {
    this.target = { host, port };
  }

  /** Destroys every open connection, both sides; returns how many there were. */
  cut(): number {
    const n = this.pairs.size;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    return n;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: Socket): void {
    this.accepted += 1;
    if (this.target === null) {
      client.destroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.setNoDelay(true);
      socket.on("error", end);
      socket.on("close", end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
