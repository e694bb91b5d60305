/**
 * The compiled binary is the product: router, serve (listener and drones), request,
 * start/stop and the built-in settings server, all run from dist/osrf-prefork-linux-x64
 * alone, serving app modules that live outside the binary and have their own imports.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { LINUX_BINARY as BIN, type Bus, ensureLinuxBinary, startBus } from "../../devkit/bus.ts";
import { CliProcess, runCli } from "../../devkit/processes.ts";

const ROOT = resolve(import.meta.dir, "../..");
const HOST_OK = process.platform === "linux" && process.arch === "x64";
const TIMEOUT = 60_000;

const APP = `
import { defineService, MethodException } from "osrf-prefork";
import pad from "tiny-pad";
import { shout } from "./lib/shout.js";
export default defineService({
  methods: [
    { name: "hello", argc: 1, handler: (_ctx, who) => shout(pad(String(who), 6)) },
    { name: "pid", handler: () => process.pid },
    { name: "refuse", handler: () => { throw new MethodException(403, "not for you"); } },
  ],
});
`;

let bus: Bus;
let serve: CliProcess | undefined;
let appDir: string;
let savedBin: string | undefined;

describe.skipIf(!HOST_OK)("compiled linux-x64 binary", () => {
  beforeAll(async () => {
    await ensureLinuxBinary();
    savedBin = process.env.OSRF_PREFORK_BIN;
    // Every osrf-prefork process the harness starts is now the binary.
    process.env.OSRF_PREFORK_BIN = BIN;
    bus = await startBus();
    appDir = join(bus.dir, "app");
    mkdirSync(join(appDir, "lib"), { recursive: true });
    mkdirSync(join(appDir, "node_modules/tiny-pad"), { recursive: true });
    writeFileSync(
      join(appDir, "node_modules/tiny-pad/package.json"),
      JSON.stringify({ name: "tiny-pad", main: "index.js" }),
    );
    writeFileSync(join(appDir, "node_modules/tiny-pad/index.js"), "module.exports = (s, n) => s.padStart(n, '.');\n");
    writeFileSync(join(appDir, "lib/shout.js"), "export const shout = (s) => s.toUpperCase();\n");
    writeFileSync(join(appDir, "service.ts"), APP);
  }, 120_000);

  afterAll(async () => {
    if (serve) expect(await serve.stop("SIGTERM")).toBe(0);
    await bus?.stop();
    if (savedBin === undefined) delete process.env.OSRF_PREFORK_BIN;
    else process.env.OSRF_PREFORK_BIN = savedBin;
  }, TIMEOUT);

  test("version", async () => {
    const r = await runCli(["version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `osrf-prefork ${(await Bun.file(join(ROOT, "package.json")).json()).version} (bun ${Bun.version}, ${process.platform}-${process.arch})\n`,
    );
  });

  test(
    "router, serve and request from the binary; drones are the binary too",
    async () => {
      expect(bus.router.proc.pid).toBeGreaterThan(0);
      serve = CliProcess.start([
        "serve",
        "--service",
        "test.compiled",
        "--app",
        join(appDir, "service.ts"),
        "--config",
        bus.coreFile,
        "--settings",
        join(ROOT, "test/fixtures/config/opensrf.xml"),
        "--host",
        "nohost",
        "--logfile",
        "stderr",
        "--loglevel",
        "3",
      ]);
      await Promise.race([
        bus.online("test.compiled"),
        serve.proc.exited.then((c) => Promise.reject(new Error(`serve exited ${c}:\n${serve!.output}`))),
      ]);
      const r = await runCli(["request", "--config", bus.coreFile, "test.compiled", "hello", '"ops"']);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('"...OPS"\n');

      const drone = (await bus.client.request("test.compiled", "pid").first()) as number;
      expect(readlinkSync(`/proc/${drone}/exe`)).toBe(BIN);
      expect(readlinkSync(`/proc/${serve.pid}/exe`)).toBe(BIN);
    },
    TIMEOUT,
  );

  test(
    "a MethodException thrown by the app reaches the caller with its code",
    async () => {
      const r = await runCli(["request", "--config", bus.coreFile, "test.compiled", "refuse"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("403: not for you");
    },
    TIMEOUT,
  );

  test(
    "start --all with the built-in settings server, then stop --all",
    async () => {
      const dir = join(bus.dir, "host");
      mkdirSync(dir);
      const settings = join(dir, "opensrf.xml");
      writeFileSync(
        settings,
        `<opensrf version="0.0.3">
  <default>
    <dirs><pid>${dir}/run</pid></dirs>
    <apps>
      <opensrf.settings><language>typescript</language><implementation>builtin:opensrf.settings</implementation>
        <unix_config><min_children>1</min_children><max_children>2</max_children></unix_config></opensrf.settings>
      <test.started><language>typescript</language><implementation>${appDir}/service.ts</implementation>
        <unix_config><min_children>1</min_children><max_children>1</max_children></unix_config></test.started>
    </apps>
  </default>
  <hosts><binhost><activeapps><appname>test.started</appname><appname>opensrf.settings</appname></activeapps></binhost></hosts>
</opensrf>
`,
      );
      const common = ["--config", bus.coreFile, "--settings", settings, "--host", "binhost"];
      const start = await runCli(["start", "--all", ...common], { timeoutMs: TIMEOUT });
      expect(start.stderr).toBe("");
      expect(start.code).toBe(0);
      // The settings server first, as osrf_control does.
      expect(start.stdout).toMatch(/^opensrf\.settings: started \(pid \d+.*\ntest\.started: started \(pid \d+/);

      await Promise.all([bus.online("opensrf.settings"), bus.online("test.started")]);
      const host = await runCli([
        "request",
        "--config",
        bus.coreFile,
        "opensrf.settings",
        "opensrf.settings.host_config.get",
        '"binhost"',
      ]);
      expect(host.code).toBe(0);
      expect(JSON.parse(host.stdout).apps["test.started"].unix_config).toEqual({ min_children: 1, max_children: 1 });
      const hello = await runCli(["request", "--config", bus.coreFile, "test.started", "hello", '"bin"']);
      expect(hello.stdout).toBe('"...BIN"\n');

      const stop = await runCli(["stop", "--all", "--pid-dir", join(dir, "run")], { timeoutMs: TIMEOUT });
      expect(stop.code).toBe(0);
      expect(stop.stdout).toMatch(/^opensrf\.settings: stopped \(pid \d+, SIGTERM/m);
      expect(stop.stdout).toMatch(/^test\.started: stopped \(pid \d+, SIGTERM/m);
    },
    TIMEOUT,
  );
});
