// Shutdown of the real server under a connected client: SIGTERM sends `goaway` and closes
// with 1001, the client comes back, and since sessions live in the server's memory, the
// restarted server refuses the resume, which the client must report clearly.

import assert from "node:assert/strict";
import { after, afterEach, describe, it } from "node:test";
import { endClients, open, sentOf } from "./fixtures.js";
import { numberedConfig, ServerProcess } from "./server.js";

describe("a server that shuts down", { timeout: 60_000 }, () => {
  // A fixed secret, so that the restarted server can read the old resume token and the
  // refusal is about the session (gone with the process), not the signature.
  const config = numberedConfig({
    // reconnect_after_ms: by then the old process has closed its port (a draining node
    // still answers hello, with `overloaded`).
    server: { secret: "integration-suite-secret", reconnect_after_ms: 1000 },
    limits: { heartbeat_s: 5 },
  });
  let first: ServerProcess | null = null;
  let second: ServerProcess | null = null;

  afterEach(endClients);

  after(async () => {
    await first?.stop();
    await second?.stop();
  });

  it("goaway on SIGTERM: the client reconnects, and a restarted server's resume_failed ends it clearly", async () => {
    first = await ServerProcess.start(config);
    const { client, rec, sockets } = open(first.url, { backoff: { baseMs: 100, maxMs: 400 } });
    client.connect();
    client.sendText("count 100000 2");
    await rec.until(() => rec.finals.length >= 10, "10 finals");

    assert.equal(await first.signal("SIGTERM"), 0); // drained, clean exit
    assert.deepEqual(
      rec.goaways.map((g) => [g.reason, g.reconnect_after_ms]),
      [["shutdown", 1000]],
    );
    const closed = rec.states.find((s) => s.previous === "connected")!;
    assert.deepEqual([closed.state, closed.closeCode], ["reconnecting", 1001]);

    second = await ServerProcess.start(config, first.port);
    await rec.until(() => client.state === "closed", "the end of the client", 20_000);
    assert.equal(rec.states.at(-1)!.closeCode, 4004);
    // Should a try still reach the draining node, its `overloaded` only delays the end.
    const fatal = rec.errors.filter((e) => e.fatal && e.code !== "overloaded");
    assert.deepEqual(
      fatal.map((e) => [e.source, e.code]),
      [
        ["server", "resume_failed"],
        ["client", "resume_failed"],
      ],
    );
    assert.equal(fatal[0]!.message, "unknown or expired session");
    assert.match(fatal[1]!.message, /cannot be resumed \(unknown or expired session\); start a new session/);
    assert.equal(client.resumeState, null, "a session that cannot be resumed is not offered for resuming");
    assert.ok(sockets.length >= 2);
    const resumeHello = sentOf(sockets.at(-1)!, "hello")[0]!;
    assert.ok(resumeHello["resume"] !== undefined);
  });
});
