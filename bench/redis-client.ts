/**
 * Which Redis client the bus uses: Bun's built-in `RedisClient` or our RESP connection
 * (src/redis/resp-client.ts), measured on the bus's own pattern against a private
 * redis-server: a caller RPUSHes a ~400-byte message to a peer's inbox, the peer BLPOPs it and
 * RPUSHes an answer, the caller BLPOPs that. Each side holds a reader (blocking) and a writer
 * connection, as the transport does. Prints round trips per second for each, in alternation.
 *
 *   node_modules/.bin/bun bench/redis-client.ts [round trips per run, default 3000] [runs, default 3]
 */
import { RedisClient } from "bun";
import { REDIS_TEST_ACCOUNTS, startRedisServer } from "../devkit/redis-server.ts";
import { RespConnection } from "../src/redis/resp-client.ts";

/** The few commands the benchmark needs, whichever client runs them. */
interface Conn {
  send(args: string[]): Promise<unknown>;
  close(): void;
}

const N = Number(process.argv[2] ?? 3000);
const RUNS = Number(process.argv[3] ?? 3);
const PAYLOAD = JSON.stringify({ to: "opensrf:client:x", from: "opensrf:client:y", body: "x".repeat(300) });

const redis = await startRedisServer();
const [user, pass] = REDIS_TEST_ACCOUNTS.opensrf;

async function bunConn(): Promise<Conn> {
  const c = new RedisClient(`redis://${user}:${pass}@127.0.0.1:${redis.port}`, { autoReconnect: false });
  await c.connect();
  return { send: (a) => c.send(a[0]!, a.slice(1)), close: () => c.close() };
}

async function ourConn(): Promise<Conn> {
  const c = await RespConnection.connect({ host: "127.0.0.1", port: redis.port, username: user, password: pass });
  return { send: (a) => c.command(a), close: () => c.destroy() };
}

async function pingPong(open: () => Promise<Conn>): Promise<number> {
  const [aRead, aWrite, bRead, bWrite] = await Promise.all([open(), open(), open(), open()]);
  const A = "opensrf:client:bench:a";
  const B = "opensrf:client:bench:b";
  let stop = false;
  const peer = (async () => {
    while (!stop) {
      const got = await bRead.send(["BLPOP", B, "1"]);
      if (got) await bWrite.send(["RPUSH", A, PAYLOAD]);
    }
  })();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    await aWrite.send(["RPUSH", B, PAYLOAD]);
    await aRead.send(["BLPOP", A, "5"]);
  }
  const rate = N / ((performance.now() - t0) / 1000);
  stop = true;
  await peer;
  for (const c of [aRead, aWrite, bRead, bWrite]) c.close();
  return rate;
}

try {
  for (let run = 1; run <= RUNS; run++) {
    const bun = await pingPong(bunConn);
    const ours = await pingPong(ourConn);
    console.log(`run ${run}: Bun RedisClient ${bun.toFixed(0)}/s, our RESP connection ${ours.toFixed(0)}/s`);
  }
} finally {
  await redis.stop();
}
