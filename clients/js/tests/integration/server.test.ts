// Against a running Parley server. A placeholder until the test suite starts the server
// itself: it runs only when PARLEY_URL (and PARLEY_TOKEN) name one, e.g.
//   PARLEY_URL=ws://127.0.0.1:8000/v1/stream PARLEY_TOKEN=… npm test

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WebSocket } from "ws";
import { ParleyClient } from "../../src/socket/client.js";

const url = process.env["PARLEY_URL"];
const token = process.env["PARLEY_TOKEN"] ?? "";

describe("against a running server", { skip: url === undefined ? "PARLEY_URL is not set" : false }, () => {
  for (const protocol of ["msgpack", "json"] as const) {
    it(`runs a text turn to turn.done (${protocol})`, async () => {
      const client = new ParleyClient({ url: url!, token, protocol, WebSocket, session: { mode: "agent" } });
      try {
        const done = new Promise<string>((resolve, reject) => {
          client.on("turn.done", (d) => resolve(d.turn_id));
          client.on("error", (e) => {
            if (e.fatal) reject(new Error(`${e.code}: ${e.message}`));
          });
        });
        client.connect();
        client.sendText("Say hello.", "u1");
        const turnId = await done;
        const turn = client.turn(turnId)!;
        assert.equal(turn.inputId, "u1");
        assert.ok(turn.done !== null);
      } finally {
        client.bye();
      }
    });
  }
});
