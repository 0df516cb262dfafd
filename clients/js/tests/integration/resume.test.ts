// Resuming against the real server: the connection is cut underneath the client, or the
// app reloads with saved state; what the app sees must stay exactly the server's stream
// (nothing lost, nothing twice, in order), checked on the wire as well, and audio must
// be re-sent from where the server stands.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lastSegmentIs, open, sentOf, serverErrors, useServer } from "./fixtures.js";
import { range, sleep, tcpOf } from "./observe.js";
import { numberedConfig } from "./server.js";

describe("resuming on the real server", { timeout: 60_000 }, () => {
  const server = useServer(numberedConfig({ limits: { heartbeat_s: 2 } }));

  for (const protocol of ["msgpack", "json"] as const) {
    it(`resumes after the socket is cut: every event once, in order (${protocol})`, async () => {
      // The default backoff: the stream goes on into the replay buffer while detached.
      const { client, rec, sockets } = open(server().url, { protocol, backoff: { baseMs: 250, maxMs: 1_000 } });
      client.connect();
      client.sendText("count 300 3");
      await rec.until(() => rec.finals.length >= 41, "final 40");
      const cutAt = client.resumeState!.last_seq;
      sockets[0]!.ws.terminate(); // no closing handshake: a network cut
      await rec.until(lastSegmentIs(rec, 299), "final 299");

      assert.deepEqual(rec.segments(), range(300));
      assert.deepEqual(rec.stateNames(), ["connecting", "connected", "reconnecting", "resumed"]);
      const [first, second] = rec.welcomes;
      assert.equal(second!.resumed, true);
      assert.equal(second!.session_id, first!.session_id);
      assert.ok(second!.last_seq > cutAt, `${second!.last_seq} > ${cutAt}: events arrived while detached`);
      // On the wire too: the replay starts right after the last seq the client took.
      assert.equal(sockets.length, 2);
      assert.deepEqual([...sockets[0]!.seqs, ...sockets[1]!.seqs], range(300, 1));
      assert.equal(sentOf(sockets[1]!, "hello")[0]!["resume"] !== undefined, true);
      assert.deepEqual(rec.clientErrors(), []);
    });
  }

  it("resumes from saved state in a new client after disconnect()", async () => {
    const a = open(server().url);
    a.client.connect();
    a.client.sendText("count 100 5");
    await a.rec.until(() => a.rec.finals.length >= 30, "30 finals");
    a.client.disconnect();
    const saved = a.client.resumeState!;
    assert.equal(a.client.state, "closed");

    const b = open(server().url, { resume: saved }); // a page reload, say
    b.client.connect();
    await b.rec.until(lastSegmentIs(b.rec, 99), "final 99");
    assert.equal(b.rec.welcomes[0]!.resumed, true);
    assert.deepEqual([...a.rec.segments(), ...b.rec.segments()], range(100));
    assert.deepEqual([...a.rec.errors, ...b.rec.errors], []);
  });

  it("re-sends audio from welcome.audio_next after a resume, without duplicates", async () => {
    const { client, rec, sockets } = open(server().url, { session: { mode: "caption" } });
    const pcm = (i: number) => new Uint8Array(320).fill(i);
    client.connect();
    for (let i = 0; i < 5; i++) client.sendAudio(pcm(i));
    await rec.until(() => rec.finals.length === 5, "5 finals");
    // Chunks 5 and 6 are handed to the socket but die with it, as if in flight.
    const tcp = tcpOf(sockets[0]!.ws);
    tcp.cork();
    client.sendAudio(pcm(5));
    client.sendAudio(pcm(6));
    sockets[0]!.ws.terminate();
    client.sendAudio(pcm(7)); // offline: kept for the next connection
    client.sendAudio(pcm(8));
    await rec.until(() => rec.finals.length >= 9, "9 finals");
    await sleep(100);

    assert.deepEqual(rec.segments(), range(9));
    assert.deepEqual(
      rec.finals.map((f) => f.text),
      range(9).map((i) => `chunk ${i} 320`),
    );
    const resumed = rec.welcomes[1]!;
    assert.equal(resumed.resumed, true);
    assert.equal(resumed.audio_next, 5);
    // Chunks 7 and 8 may still go to the dead socket (its close event comes later):
    // either way they stay buffered until a welcome says what the server has.
    assert.deepEqual(
      sentOf(sockets[0]!, "audio")
        .map((m) => m["chunk"])
        .slice(0, 7),
      range(7),
    );
    assert.deepEqual(
      sentOf(sockets[1]!, "audio").map((m) => m["chunk"]),
      [5, 6, 7, 8],
    );
    assert.equal(serverErrors(rec, "audio_gap").length, 0);
    assert.deepEqual(rec.clientErrors(), []);
  });

  it("audio past the buffer bound while offline: the client's audio.dropped is the server's audio_gap", async () => {
    // 60 ms of 16 kHz s16 = 1920 bytes: six chunks of 10 ms.
    const { client, rec, sockets } = open(server().url, { session: { mode: "caption" }, audioBufferMs: 60 });
    const pcm = (i: number) => new Uint8Array(320).fill(i);
    client.connect();
    for (let i = 0; i < 3; i++) client.sendAudio(pcm(i));
    await rec.until(() => rec.finals.length === 3, "3 finals");
    sockets[0]!.ws.terminate();
    await rec.until(() => client.state === "reconnecting", "the cut noticed");
    for (let i = 3; i < 13; i++) client.sendAudio(pcm(i)); // 3..6 fall out of the bound
    await rec.until(lastSegmentIs(rec, 12), "final 12");

    assert.deepEqual(rec.segments(), [0, 1, 2, 7, 8, 9, 10, 11, 12]);
    assert.equal(rec.welcomes[1]!.audio_next, 3);
    assert.deepEqual(rec.dropped, [{ from: 3, to: 7 }]);
    assert.deepEqual(
      sentOf(sockets[1]!, "audio").map((m) => m["chunk"]),
      [7, 8, 9, 10, 11, 12],
    );
    assert.deepEqual(
      rec.clientErrors().map((e) => [e.code, e.fatal]),
      [["audio_overflow", false]],
    );
    const [gap, ...more] = serverErrors(rec, "audio_gap");
    assert.deepEqual(more, []);
    assert.equal(gap!.fatal, false);
    assert.ok(gap!.seq !== undefined, "audio_gap is durable: a resuming client sees it");
    assert.match(gap!.message, /4 audio chunk\(s\) missing before chunk 7/);
  });

});
