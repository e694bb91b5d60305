/**
 * The Redis transport and the client on it, against a real private redis-server with the ACL
 * accounts of redis-accounts.txt: addresses and inbox clean-up, login errors, bad list elements
 * (not JSON, no `from`, oversize), a lost connection with calls in flight, and a Redis restart.
 * The peer answering requests is a second RedisConnection popping the router queue.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { REDIS_TEST_ACCOUNTS, type RedisServer, startRedisServer } from "../../devkit/redis-server.ts";
import { ConnectError, MessageTooLargeError } from "../../src/bus/errors.ts";
import type { BusMessage } from "../../src/bus/types.ts";
import { Client } from "../../src/client/client.ts";
import { DeliveryError } from "../../src/client/errors.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { complete, result } from "../../src/protocol/messages.ts";
import { RedisConnection, type RedisConnectionOptions } from "../../src/redis/connection.ts";
import { decodeEnvelope } from "../../src/redis/envelope.ts";
import { RedisAddressError } from "../../src/redis/errors.ts";
import { RespConnection } from "../../src/redis/resp-client.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";

let redis: RedisServer;
const [USER, PASS] = REDIS_TEST_ACCOUNTS.opensrf;
const ROUTER_QUEUE = "opensrf:router:router:localhost";

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});

function options(logger: RedisConnectionOptions["logger"], extra: Partial<RedisConnectionOptions> = {}) {
  return {
    host: "127.0.0.1",
    port: redis.port,
    domain: "localhost",
    username: USER,
    password: PASS,
    routerName: "router",
    maxMessageSize: 200_000,
    logger,
    hostname: "testhost",
    pollSeconds: 1,
    maxBackoffMs: 200,
    ...extra,
  } satisfies RedisConnectionOptions;
}

/** Waits (bounded by the test timeout) until `cond` holds. */
async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await cond())) await Bun.sleep(20);
}

/**
 * A peer in the router's place: pops the router queue (as the opensrf account may) and answers
 * every REQUEST with its params, from its own RedisConnection.
 */
async function startEchoPeer(): Promise<{ stop(): Promise<void>; seen: BusMessage[] }> {
  const log = new RecordingLogger();
  const me = await RedisConnection.connect(options(log));
  const pop = await RespConnection.connect({ host: "127.0.0.1", port: redis.port, username: USER, password: PASS });
  const seen: BusMessage[] = [];
  let active = true;
  const loop = (async () => {
    while (active) {
      const got = await pop.command(["BLPOP", ROUTER_QUEUE, "1"]).catch(() => null);
      if (!Array.isArray(got) || typeof got[1] !== "string") {
        if (!pop.isOpen) return;
        continue;
      }
      const m = decodeEnvelope(got[1]);
      seen.push(m);
      const req = decodeBody(m.body)[0]!;
      if (req.type !== "REQUEST") continue;
      const body = encodeBody([result(req.threadTrace, req.payload.params), complete(req.threadTrace)]);
      me.send({ to: m.from, thread: m.thread, xid: m.xid, body });
    }
  })();
  return {
    seen,
    async stop() {
      active = false;
      await loop;
      pop.destroy();
      await me.close();
    },
  };
}

describe("RedisConnection", () => {
  test("an address of its own, messages between two connections, the inbox deleted at close", async () => {
    const log = new RecordingLogger();
    const a = await RedisConnection.connect(options(log));
    const b = await RedisConnection.connect(options(log));
    expect(a.address).toMatch(new RegExp(`^opensrf:client:opensrf:localhost:testhost:${process.pid}:[0-9a-f]{8}$`));
    expect(a.address).not.toBe(b.address);
    const got: BusMessage[] = [];
    b.onMessage((m) => got.push(m));
    a.send({ to: b.address, thread: "t1", xid: "x1", body: '[{"k":"é☃"}]' });
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ from: a.address, to: b.address, thread: "t1", xid: "x1", body: '[{"k":"é☃"}]' });
    // Something left in a's inbox is deleted with it.
    b.send({ to: a.address, thread: "t2", body: "[]" });
    await a.close();
    await b.close();
    expect(await redis.admin(["EXISTS", a.address])).toBe(0);
    expect(log.messages("error")).toEqual([]);
  });

  test("login errors are one line naming server and account, never the password", async () => {
    const log = new RecordingLogger();
    const wrong = await RedisConnection.connect(options(log, { password: "not-the-password" })).catch((e) => e);
    expect(wrong).toBeInstanceOf(ConnectError);
    expect(wrong.message).toBe(
      `Redis login refused for opensrf@127.0.0.1:${redis.port}: wrong username or password (check <username>/<passwd>)`,
    );
    const refused = await RedisConnection.connect(options(log, { port: 1 })).catch((e) => e);
    expect(refused).toBeInstanceOf(ConnectError);
    expect(refused.message).toMatch(/^cannot reach Redis at 127\.0\.0\.1:1: connection refused/);
    for (const e of [wrong, refused]) expect(e.message).not.toContain(PASS);
  });

  test("send refuses what no Redis key can take: a non-bus address, an oversize message", async () => {
    const log = new RecordingLogger();
    const a = await RedisConnection.connect(options(log));
    expect(() => a.send({ to: "router@localhost/opensrf.math", body: "[]" })).toThrow(RedisAddressError);
    const big = JSON.stringify(["x".repeat(300_000)]);
    expect(() => a.send({ to: a.address, body: big })).toThrow(MessageTooLargeError);
    await a.close();
  });
});

describe("bad list elements in a client's inbox", () => {
  test("not JSON, no from, oversize: each logged once and dropped; the messages around them all arrive, in order", async () => {
    const log = new RecordingLogger();
    const a = await RedisConnection.connect(options(log));
    const got: string[] = [];
    a.onMessage((m) => got.push(m.thread));
    const good = (thread: string) =>
      JSON.stringify({ to: a.address, from: "opensrf:client:opensrf:localhost:x:1:ab", thread, body: [] });
    const oversize = good("big").replace('"body":[]', `"body":["${"x".repeat(250_000)}"]`);
    for (const el of [
      good("1"),
      "not json at all",
      good("2"),
      '{"to":"x","thread":"nofrom","body":[]}',
      good("3"),
      oversize,
      good("4"),
    ]) {
      await redis.admin(["RPUSH", a.address, el]);
    }
    await until(() => got.length === 4);
    expect(got).toEqual(["1", "2", "3", "4"]);
    const lines = [...log.messages("warn"), ...log.messages("error")].join("\n");
    expect(lines).toContain(`ignoring a message on ${a.address}: not JSON`);
    expect(lines).toContain('no "from" (thread "nofrom"): nobody to answer');
    expect(lines).toMatch(/dropped a \d+-byte message from opensrf:client:.* over the 200000-byte limit/);
    await a.close();
  });
});

describe("the client on Redis", () => {
  test("a request to a peer in the router's place, its params echoed", async () => {
    const peer = await startEchoPeer();
    const log = new RecordingLogger();
    const conn = await RedisConnection.connect(options(log));
    const client = new Client({ transport: conn, routerName: "router", logger: log, timeout: 20, ownTransport: true });
    try {
      expect(await client.request("opensrf.test", "echo", ["é", 1]).collect()).toEqual([["é", 1]]);
      expect(peer.seen.at(-1)?.to).toBe("opensrf:service:_:_:opensrf.test");
    } finally {
      await client.close();
      await peer.stop();
    }
  });

  test("a lost connection fails the calls in flight at once; after the reconnect the same client works", async () => {
    const log = new RecordingLogger();
    const conn = await RedisConnection.connect(options(log));
    const client = new Client({ transport: conn, routerName: "router", logger: log, timeout: 600, ownTransport: true });
    const onlineAgain = new Promise<boolean>((resolve) => conn.onOnline(resolve));
    // Nobody pops the router queue yet: the call waits.
    const pending = client
      .request("opensrf.test", "echo", [1])
      .collect()
      .catch((e: Error) => e);
    await until(async () => (await redis.admin(["LLEN", ROUTER_QUEUE])) === 1);
    await redis.admin(["CLIENT", "KILL", "USER", USER]);
    const err = await pending;
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as DeliveryError).condition).toBe("connection-lost");
    expect((err as Error).message).toMatch(/the connection to the Redis bus was lost while waiting for the reply/);
    expect(await onlineAgain).toBe(true);
    await redis.admin(["DEL", ROUTER_QUEUE]);
    const peer = await startEchoPeer();
    try {
      expect(await client.request("opensrf.test", "echo", [2]).collect()).toEqual([[2]]);
    } finally {
      await client.close();
      await peer.stop();
    }
    expect(log.messages("warn").join("\n")).toMatch(/lost the Redis connection of opensrf:client:/);
  });

  test("a Redis restart: what is sent while it is down goes out once it is back, and the answers come", async () => {
    const log = new RecordingLogger();
    const conn = await RedisConnection.connect(options(log));
    const client = new Client({ transport: conn, routerName: "router", logger: log, timeout: 600, ownTransport: true });
    let offline = 0;
    conn.onOffline(() => offline++);
    const reconnected = new Promise<boolean>((resolve) => conn.onOnline(resolve));
    await redis.kill();
    await until(() => offline === 1);
    // Accepted while Redis is down: queued, not lost.
    const calls = [1, 2, 3].map((n) => client.request("opensrf.test", "echo", [n]).collect());
    await redis.start();
    expect(await reconnected).toBe(true);
    const peer = await startEchoPeer();
    try {
      expect(await Promise.all(calls)).toEqual([[[1]], [[2]], [[3]]]);
    } finally {
      await client.close();
      await peer.stop();
    }
    expect(log.messages("info").join("\n")).toContain(`reconnected to Redis as ${conn.address}`);
  });
});
