/**
 * Secrets on the Redis bus: the ACL passwords of the service and router accounts never appear
 * in a process's arguments or environment, nor in any log or output of a run at the most
 * verbose log level (listener, drones, router, `request`, a reconnect), with real processes:
 * a private redis-server with OpenSRF main's accounts, our router, `osrf-prefork serve`.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { FaultStack } from "../../devkit/fault-stack.ts";
import { childPids, readProc, waitUntil } from "../../devkit/load.ts";
import { runCli } from "../../devkit/processes.ts";
import { REDIS_TEST_ACCOUNTS } from "../../devkit/redis-server.ts";
import { served, useFaultStack } from "../harness/fault-suite.ts";

const SERVICE = "secret.redis";
const APP = `export default { methods: [{ name: "work", argc: 2, handler: (_ctx, i) => [i, process.pid] }] };`;
/** The bus accounts' passwords; RESP sends them in clear (AUTH user password). */
const SECRETS = [REDIS_TEST_ACCOUNTS.opensrf[1], REDIS_TEST_ACCOUNTS.router[1]];

let stack: FaultStack;

useFaultStack(
  {
    bus: "redis",
    services: [{ name: SERVICE, app: APP, unix: { min_children: 2, max_children: 3 } }],
    loglevel: 5,
    log: "file",
  },
  (s) => {
    stack = s;
  },
);

/** Every log file of the run and every process output. */
function everything(): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const d of [stack.dir, join(stack.coreFile, "..")]) {
    for (const f of readdirSync(d)) {
      if (f.endsWith(".log")) out.push([join(d, f), readFileSync(join(d, f), "utf8")]);
    }
  }
  out.push(["router output", stack.router.output]);
  for (const [name, p] of stack.serves) out.push([`${name} output`, p.output]);
  return out;
}

describe("secrets on Redis", () => {
  test("the ACL passwords appear in no process arguments, environment, log or output", async () => {
    // Every path: requests, a session, a CLI request (also --raw), a reconnect of everyone.
    expect(await served(stack.client, SERVICE, [1, 0])).toBe(true);
    const session = stack.client.session(SERVICE);
    await session.connect();
    await session.request("work", [2, 0]).first();
    session.disconnect();
    const cli = await runCli(["request", "--config", stack.coreFile, "--raw", SERVICE, "work", "3", "0"]);
    expect(cli.code, cli.stderr).toBe(0);
    await stack.redis.admin(["CLIENT", "KILL", "USER", REDIS_TEST_ACCOUNTS.opensrf[0]]);
    await stack.redis.admin(["CLIENT", "KILL", "USER", REDIS_TEST_ACCOUNTS.router[0]]);
    await waitUntil("the service to answer again", () => served(stack.client, SERVICE, [4, 0]), 20_000);

    const listener = stack.listenerPid(SERVICE);
    const drones = childPids(listener);
    expect(drones.length).toBeGreaterThanOrEqual(2);
    for (const pid of [listener, stack.router.pid, ...drones]) {
      for (const file of ["cmdline", "environ"]) {
        const text = readProc(pid, file, "latin1");
        if (text === undefined) continue; // exited meanwhile
        for (const secret of SECRETS)
          expect({ pid, file, leaks: text.includes(secret) }).toEqual({ pid, file, leaks: false });
      }
    }
    const texts = [...everything(), ["cli stdout", cli.stdout], ["cli stderr", cli.stderr]] as Array<[string, string]>;
    for (const [where, text] of texts) {
      for (const secret of SECRETS) expect({ where, leaks: text.includes(secret) }).toEqual({ where, leaks: false });
    }
    // The run did log (level 5), reconnects included: an empty log would prove nothing.
    const log = readFileSync(stack.logFile(SERVICE), "utf8");
    expect(log.length).toBeGreaterThan(1000);
    expect(log).toContain("reconnected to Redis");
  }, 60_000);
});
