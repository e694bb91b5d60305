/**
 * The client when its XMPP stream breaks: calls in flight fail at once with a
 * DeliveryError ("connection-lost") instead of waiting for their timeout; calls made
 * afterwards (sent once the stream is back) are unaffected.
 */
import { describe, expect, test } from "bun:test";
import { Client } from "../../src/client/client.ts";
import { DeliveryError } from "../../src/client/errors.ts";
import { complete, connectOk, result } from "../../src/protocol/messages.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";
import { FakeXmppConnection } from "../harness/fake-xmpp.ts";

const DRONE = "opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594";

describe("connection lost", () => {
  test("calls in flight fail at once with a DeliveryError; a connected session keeps its drone", async () => {
    const t = new FakeXmppConnection();
    const client = new Client({
      transport: t,
      routerName: "router",
      logger: new RecordingLogger(),
      timeout: 60,
      ownTransport: true,
    });
    const session = client.session("opensrf.math");
    const connecting = session.connect();
    t.reply(t.sent[0]!, DRONE, [connectOk(0)]);
    await connecting;
    const a = client.request("opensrf.math", "add", [1, 2]).collect();
    const b = session.request("add", [3, 4]).collect();
    t.lose();
    // At once: failed before lose() returned, not when some timer fires.
    expect(client.inFlight).toBe(0);
    for (const p of [a, b]) {
      const e = await p.then(
        () => undefined,
        (err: Error) => err,
      );
      expect(e).toBeInstanceOf(DeliveryError);
      expect((e as DeliveryError).condition).toBe("connection-lost");
      expect(e!.message).toMatch(
        /^opensrf\.math add: the connection to the XMPP server was lost while waiting for the reply \(the request may or may not have run; thread \S+, xid \S+\)$/,
      );
    }
    expect(session.connected).toBe(true);
    expect(session.remote).toBe(DRONE);

    // After the stream is back: a new call works, and a late reply to a failed one is ignored.
    const c = client.request("opensrf.math", "add", [5, 6]).collect();
    const sent = t.sent.at(-1)!;
    t.reply(t.sent[1]!, DRONE, [result(1, 3), complete(1)]);
    t.reply(sent, DRONE, [result(1, 11), complete(1)]);
    expect(await c).toEqual([11]);
    await client.close();
  });

  test("nothing in flight: nothing happens", async () => {
    const t = new FakeXmppConnection();
    const client = new Client({
      transport: t,
      routerName: "router",
      logger: new RecordingLogger(),
      ownTransport: true,
    });
    t.lose();
    expect(client.inFlight).toBe(0);
    await client.close();
  });
});
