/**
 * Whole-host control (`start`, `stop`, `restart`) against an opensrf.xml with two
 * TypeScript services and a Perl one: daemonized listeners with pid files, stale pid files,
 * start-up failures, `status` through the socket convention, and service modules outside
 * the repository importing "osrf-prefork".
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Bus, startBus } from "../../devkit/bus.ts";
import { isAlive, waitUntil } from "../../devkit/load.ts";
import { runCli } from "../../devkit/processes.ts";
import { RequestError } from "../../src/client/errors.ts";
import { statusSocketPath } from "../../src/metrics/index.ts";

const TIMEOUT = 60_000;

let bus: Bus;
let settings: string;
let pidDir: string;
let logDir: string;

const ALPHA = `
import { defineService, MethodException, StatusCode } from "osrf-prefork";
import { greeting } from "./lib/greeting.ts";
export default defineService({
  methods: [
    { name: "hello", argc: 1, handler: (_ctx, who) => greeting(String(who)) },
    { name: "pid", handler: () => process.pid },
    { name: "missing", handler: () => { throw new MethodException(StatusCode.NOTFOUND, "no such thing here"); } },
  ],
});
`;
const BETA = `export default { methods: [{ name: "pid", handler: () => process.pid }] };\n`;

function settingsXml(dir: string): string {
  return `<?xml version="1.0"?>
<opensrf version="0.0.3">
  <default>
    <dirs><pid>${dir}/run</pid><log>${dir}/log</log></dirs>
    <apps>
      <test.alpha>
        <language>typescript</language>
        <implementation>alpha.ts</implementation>
        <keepalive>2</keepalive>
        <unix_config><min_children>1</min_children><max_children>2</max_children><shutdown_timeout>5</shutdown_timeout></unix_config>
      </test.alpha>
      <test.beta>
        <language>javascript</language>
        <implementation>${dir}/beta.js</implementation>
        <unix_config><min_children>2</min_children><max_children>2</max_children><shutdown_timeout>5</shutdown_timeout></unix_config>
      </test.beta>
      <opensrf.perlish><language>perl</language><implementation>OpenSRF::Application::Perlish</implementation></opensrf.perlish>
      <test.broken><language>typescript</language><implementation>no-such-module.ts</implementation></test.broken>
    </apps>
  </default>
  <hosts>
    <testhost><activeapps><appname>test.alpha</appname><appname>opensrf.perlish</appname><appname>test.beta</appname></activeapps></testhost>
    <brokenhost><activeapps><appname>test.broken</appname></activeapps></brokenhost>
  </hosts>
</opensrf>
`;
}

/** start/stop/restart with this test's files; the pid dir comes from dirs/pid. */
function control(command: string, ...more: string[]) {
  return runCli([command, "--config", bus.coreFile, "--settings", settings, "--host", "testhost", ...more], {
    timeoutMs: 60_000,
  });
}

const pidFile = (service: string) => join(pidDir, `${service}.pid`);
const pidOf = (service: string) => Number(readFileSync(pidFile(service), "utf8").trim());
const childrenOf = (pid: number) =>
  Bun.spawnSync(["ps", "-o", "pid=", "--ppid", String(pid)])
    .stdout.toString()
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0);

beforeAll(async () => {
  bus = await startBus();
  pidDir = join(bus.dir, "run");
  logDir = join(bus.dir, "log");
  mkdirSync(join(bus.dir, "lib"));
  writeFileSync(
    join(bus.dir, "lib/greeting.ts"),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the file written is TypeScript with a template literal
    "export const greeting = (who: string): string => `hello, ${who}`;\n",
  );
  writeFileSync(join(bus.dir, "alpha.ts"), ALPHA);
  writeFileSync(join(bus.dir, "beta.js"), BETA);
  settings = join(bus.dir, "opensrf.xml");
  writeFileSync(settings, settingsXml(bus.dir));
}, TIMEOUT);

afterAll(async () => {
  // Whatever a failed test left running.
  if (pidDir) await runCli(["stop", "--all", "--pid-dir", pidDir], { timeoutMs: 60_000 });
  await bus?.stop();
}, TIMEOUT);

describe("start / stop / restart", () => {
  test(
    "start --all starts each TypeScript service as a daemon and skips the Perl one",
    async () => {
      const r = await control("start", "--all");
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^test\.alpha: started \(pid \d+, log .*test\.alpha\.log\)$/m);
      expect(r.stdout).toMatch(/^test\.beta: started \(pid \d+/m);
      expect(r.stdout).toMatch(/^opensrf\.perlish: skipped: language perl is not served by osrf-prefork/m);
      for (const s of ["test.alpha", "test.beta"]) {
        const pid = pidOf(s);
        expect(isAlive(pid)).toBe(true);
        // Own session: a terminal hang-up or the caller's exit does not reach it.
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        expect(Number(fields[3])).toBe(pid);
        expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]).toBe(`OpenSRF Listener [${s}]`);
        expect(existsSync(statusSocketPath(pidDir, s))).toBe(true);
        expect(existsSync(join(logDir, `${s}.log`))).toBe(true);
      }
    },
    TIMEOUT,
  );

  test(
    "the services answer; their modules import osrf-prefork and their own files",
    async () => {
      // A listener is serving once its pid file exists; the router's class connection may lag.
      await Promise.all([bus.online("test.alpha"), bus.online("test.beta")]);
      expect(await bus.client.request("test.alpha", "hello", ["ops"]).first()).toBe("hello, ops");
      expect(childrenOf(pidOf("test.beta"))).toContain(
        (await bus.client.request("test.beta", "pid").first()) as number,
      );
    },
    TIMEOUT,
  );

  test(
    "a MethodException from the app's import of osrf-prefork keeps its status code",
    async () => {
      const err = await bus.client
        .request("test.alpha", "missing")
        .first()
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(RequestError);
      expect((err as RequestError).statusCode).toBe(404);
      expect((err as RequestError).statusText).toBe("no such thing here");
    },
    TIMEOUT,
  );

  test(
    "start again: already running, nothing new",
    async () => {
      const before = pidOf("test.alpha");
      const r = await control("start", "--all");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`test.alpha: already running (pid ${before})`);
      expect(pidOf("test.alpha")).toBe(before);
    },
    TIMEOUT,
  );

  test(
    "status finds both listeners through the pid dir convention",
    async () => {
      const r = await runCli(["status", "--all", "--settings", settings, "--host", "testhost", "--json"]);
      expect(r.code).toBe(0);
      const shown = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
      expect(JSON.stringify(shown)).toContain("test.alpha");
      expect(JSON.stringify(shown)).toContain("test.beta");
      expect(r.stderr).toContain("opensrf.perlish");
    },
    TIMEOUT,
  );

  test(
    "a service that cannot start: exit 1 and one line saying why",
    async () => {
      const r = await runCli(
        ["start", "--service", "test.broken", "--config", bus.coreFile, "--settings", settings, "--host", "brokenhost"],
        { timeoutMs: 60_000 },
      );
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^test\.broken: failed: exited with code 2 during start-up: .*no-such-module\.ts does not exist/,
      );
      expect(existsSync(pidFile("test.broken"))).toBe(false);
    },
    TIMEOUT,
  );

  test(
    "usage errors: exit 2 with one line",
    async () => {
      const none = await control("start");
      expect(none.code).toBe(2);
      expect(none.stderr.trim()).toBe("osrf-prefork start: give --service S or --all");
      const unknown = await control("start", "--service", "test.nope");
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain("test.nope is not configured to run on host testhost");
      const perl = await control("start", "--service", "opensrf.perlish");
      expect(perl.code).toBe(2);
      expect(perl.stderr).toContain("language perl");
    },
    TIMEOUT,
  );

  test(
    "restart --service replaces that listener only",
    async () => {
      const [alpha, beta] = [pidOf("test.alpha"), pidOf("test.beta")];
      const seen = bus.onlineCount("test.beta");
      const r = await control("restart", "--service", "test.beta");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`test\\.beta: stopped \\(pid ${beta}, SIGTERM`));
      expect(r.stdout).toMatch(/test\.beta: started \(pid \d+/);
      expect(pidOf("test.beta")).not.toBe(beta);
      expect(isAlive(beta)).toBe(false);
      expect(pidOf("test.alpha")).toBe(alpha);
      // The last listener unregistered, so the router closed the class and opens it again.
      await bus.onlineAfter("test.beta", seen);
      expect(childrenOf(pidOf("test.beta"))).toContain(
        (await bus.client.request("test.beta", "pid").first()) as number,
      );
    },
    TIMEOUT,
  );

  test(
    "a stale pid file (listener killed) is replaced on start",
    async () => {
      const old = pidOf("test.alpha");
      process.kill(-old, "SIGKILL");
      await waitUntil("old listener gone", () => !isAlive(old), 15_000);
      expect(existsSync(pidFile("test.alpha"))).toBe(true);
      const r = await control("start", "--service", "test.alpha");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`removed stale pid file ${pidFile("test.alpha")} (pid ${old} is gone)`);
      expect(pidOf("test.alpha")).not.toBe(old);
      await waitUntil(
        "test.alpha answering again",
        async () =>
          (await bus.client
            .request("test.alpha", "hello", ["again"])
            .first()
            .catch(() => "")) === "hello, again",
        15_000,
      );
    },
    TIMEOUT,
  );

  test(
    "stop --all stops listeners and drones, removes pid files, never signals a stranger",
    async () => {
      const listeners = ["test.alpha", "test.beta"].map(pidOf);
      const drones = listeners.flatMap(childrenOf);
      expect(drones.length).toBeGreaterThanOrEqual(3);
      // A dead pid, and a live process that is not a listener (this test runner).
      const dead = Bun.spawnSync(["true"]).pid;
      writeFileSync(pidFile("ghost"), `${dead}\n`);
      writeFileSync(pidFile("stranger"), `${process.pid}\n`);

      const r = await runCli(["stop", "--all", "--pid-dir", pidDir], { timeoutMs: 60_000 });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^test\.alpha: stopped \(pid \d+, SIGTERM, [\d.]+ s\)$/m);
      expect(r.stdout).toMatch(/^test\.beta: stopped \(pid \d+, SIGTERM/m);
      expect(r.stdout).toContain(
        `ghost: removed stale pid file ${pidFile("ghost")} (pid ${dead} is gone); not running`,
      );
      expect(r.stdout).toContain(
        `stranger: removed stale pid file ${pidFile("stranger")} (pid ${process.pid} is now another program); not running`,
      );
      for (const pid of [...listeners, ...drones]) expect(isAlive(pid)).toBe(false);
      for (const s of ["test.alpha", "test.beta", "ghost", "stranger"]) expect(existsSync(pidFile(s))).toBe(false);

      const again = await runCli(["stop", "--all", "--pid-dir", pidDir]);
      expect(again.code).toBe(0);
      expect(again.stdout).toBe(`no pid files in ${pidDir}: nothing to stop\n`);
    },
    TIMEOUT,
  );
});
