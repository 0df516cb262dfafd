// A consumer that stops reading, against the real server: the server must not wait for it
// (4008), and the client must catch up by resuming, losing nothing and seeing nothing twice
// (docs/protocol.md, "Backpressure").

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lastSegmentIs, open, serverErrors, settle, useServer } from "./fixtures.js";
import { range, tcpOf } from "./observe.js";
import { numberedConfig } from "./server.js";

describe("a consumer that stops reading", { timeout: 60_000 }, () => {
  // Small queues: 64 durable events pending for one connection make it a slow consumer.
  const server = useServer(
    numberedConfig({ limits: { heartbeat_s: 5, max_pending_events: 64, replay_events: 8192 } }),
  );
  const total = 4000;

  it("gets 4008, resumes at once and catches up with nothing lost or twice", async () => {
    const { client, rec, sockets } = open(server().url);
    client.connect();
    await rec.until(() => rec.welcomes.length === 1, "welcome");
    // Stop reading: the kernel's buffers fill, then the server's queue for this connection.
    const tcp = tcpOf(sockets[0]!.ws);
    tcp.pause();
    // `ws` resumes a socket it paused itself once its parser drains: keep ours paused.
    const hold = setInterval(() => tcp.pause(), 5);
    try {
      client.sendText(`count ${total} 0 4000`);
      const over = await settle(async () => (await server().metric("parley_outbound_queue_max_events")) > 64, true, 30_000);
      assert.ok(over, "the server's queue for the stalled client passed max_pending_events");
    } finally {
      clearInterval(hold);
    }
    tcp.resume();
    await rec.until(lastSegmentIs(rec, total - 1), `final ${total - 1}`, 40_000);

    assert.deepEqual(rec.segments(), range(total));
    // The stalled connection ends with 4008. A resumed one may too, while the pipeline
    // still outruns the replay of the backlog (new events count against the bound from
    // the moment a connection attaches): every cut is a 4008, every reconnect a resume.
    const cuts = rec.states.filter((s) => s.state === "reconnecting");
    assert.ok(cuts.length >= 1);
    assert.deepEqual(
      cuts.map((s) => s.closeCode),
      cuts.map(() => 4008),
    );
    assert.equal(serverErrors(rec, "slow_consumer").length, cuts.length);
    assert.deepEqual(rec.stateNames(), ["connecting", "connected", ...cuts.flatMap(() => ["reconnecting", "resumed"])]);
    assert.deepEqual(
      rec.welcomes.map((w) => w.resumed),
      [false, ...cuts.map(() => true)],
    );
    assert.equal(sockets.length, cuts.length + 1);
    assert.deepEqual(
      sockets.flatMap((s) => s.seqs),
      range(total, 1),
    );
    assert.deepEqual(rec.clientErrors(), []);
    if (cuts.length > 1) console.log(`# ${cuts.length} slow-consumer cuts before catching up`);
  });
});
