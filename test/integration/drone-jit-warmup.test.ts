/**
 * What a listener does for its drones' start (unix_config/drone_jit, warmup_requests), with
 * real processes: the JIT environment reaches each drone process, the drone runs its warm-up
 * before it says ready and puts the JIT thresholds back once started, the warm-up's log
 * lines stay out of the log, and a SIGHUP with other settings starts drones without them.
 * Nothing here is timed: what these settings are worth is measured by bench/drone-age.ts.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Bus, startBus } from "../../devkit/bus.ts";
import { waitUntil as pollUntil } from "../../devkit/load.ts";
import type { CliProcess } from "../../devkit/processes.ts";
import { BOOT_JIT_SCALE_ENV, EAGER_JIT_ENV } from "../../src/prefork/jit.ts";

const TEST_TIMEOUT_MS = 60_000;
const SERVICE = "test.warm";

const APP = `export default { name: "${SERVICE}", methods: [{ name: "pid", handler: () => process.pid }] };`;

const settings = (unix: string) => `<?xml version="1.0"?>
<opensrf version="0.0.3">
  <default>
    <apps>
      <${SERVICE}>
        <language>typescript</language>
        <unix_config>
          <min_children>1</min_children>
          <max_children>2</max_children>
          <max_requests_jitter>0</max_requests_jitter>
          ${unix}
        </unix_config>
      </${SERVICE}>
    </apps>
  </default>
  <hosts><testhost><activeapps><appname>${SERVICE}</appname></activeapps></testhost></hosts>
</opensrf>
`;

let bus: Bus;
let serve: CliProcess;
let settingsFile: string;

/** The environment a live process was started with. */
function environ(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const i = kv.indexOf("=");
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

/** The drone's own log lines (stderr of the listener and its drones), in order. */
const linesOf = (pid: number) => serve.output.split("\n").filter((l) => l.includes(`:${pid}:drone:`));

const waitUntil = (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> =>
  pollUntil(what, cond, timeoutMs, 50, () => serve?.output.slice(-3000) ?? "");

async function servingPid(): Promise<number> {
  return (await bus.client.request(SERVICE, "pid").first()) as number;
}

beforeAll(async () => {
  bus = await startBus();
  writeFileSync(join(bus.dir, "app.ts"), APP);
  settingsFile = join(bus.dir, "opensrf.xml");
  writeFileSync(settingsFile, settings("<warmup_requests>25</warmup_requests><drone_jit>eager</drone_jit>"));
  // Level 4: the drones' debug lines say what they did at start-up.
  serve = await bus.startServe({ service: SERVICE, app: join(bus.dir, "app.ts"), settings: settingsFile, loglevel: 4 });
}, 30_000);

afterAll(async () => {
  if (serve) expect(await serve.stop("SIGTERM")).toBe(0);
  await bus?.stop();
}, TEST_TIMEOUT_MS);

describe("drone start-up settings", () => {
  test(
    "eager JIT and a warm-up of 25: the environment reaches the drone, which warms up before ready",
    async () => {
      const pid = await servingPid();
      const env = environ(pid);
      for (const [k, v] of Object.entries(EAGER_JIT_ENV)) expect(env[k]).toBe(v);
      await waitUntil("the drone's start-up lines", () => linesOf(pid).some((l) => l.includes("drone ready as")));
      const lines = linesOf(pid);
      const warm = lines.findIndex((l) => l.includes("drone warm-up: 25 requests"));
      const reset = lines.findIndex((l) => l.includes(`JIT thresholds back from ${env[BOOT_JIT_SCALE_ENV]}×`));
      const ready = lines.findIndex((l) => l.includes("drone ready as"));
      expect(warm).toBeGreaterThanOrEqual(0);
      expect(reset).toBeGreaterThanOrEqual(0);
      expect(warm).toBeLessThan(ready);
      // The warm-up's activity lines (level 3) went to the null device, the real request's here.
      expect(serve.output).not.toContain("opensrf.system.echo");
      expect(serve.output).toMatch(new RegExp(`:${pid}:drone:.*Running ${SERVICE.replace(".", "\\.")} pid`));
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "after a SIGHUP with drone_jit normal and no warm-up, new drones start without either",
    async () => {
      const before = await servingPid();
      writeFileSync(settingsFile, settings("<warmup_requests>0</warmup_requests><drone_jit>normal</drone_jit>"));
      process.kill(serve.pid, "SIGHUP");
      let pid = before;
      await waitUntil("a drone started after the HUP", async () => {
        pid = await servingPid();
        return pid !== before && linesOf(pid).some((l) => l.includes("drone ready as"));
      });
      const env = environ(pid);
      for (const k of Object.keys(EAGER_JIT_ENV)) expect(env[k]).toBeUndefined();
      const lines = linesOf(pid).join("\n");
      expect(lines).not.toContain("drone warm-up");
      expect(lines).not.toContain("JIT thresholds back");
    },
    TEST_TIMEOUT_MS,
  );
});
