/**
 * A listener started with plain `serve --settings F` (no --status-socket) is shown by
 * `status --service S --settings F`: its default socket is in the pid dir of F when that
 * is writable, else in a private per-user runtime dir, and `status` looks in both. A
 * socket left by a listener that died is replaced at start and skipped by `status`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Bus, startBus } from "../../devkit/bus.ts";
import { CliProcess, runCli } from "../../devkit/processes.ts";
import { runtimeSocketPath } from "../../src/metrics/default-socket.ts";
import { statusSocketPath } from "../../src/metrics/endpoint.ts";
import type { PoolStatus } from "../../src/metrics/types.ts";

const TIMEOUT = 60_000;
const HOST = "statushost";
const APP = "export default { methods: [{ name: 'ping', handler: () => 'pong' }] };\n";

let bus: Bus;
let dir: string;
const running: CliProcess[] = [];

function settingsXml(service: string, pidDir: string): string {
  return `<?xml version="1.0"?>
<opensrf version="0.0.3">
  <default>
    <dirs><pid>${pidDir}</pid></dirs>
    <apps>
      <${service}>
        <language>typescript</language>
        <unix_config><min_children>1</min_children><max_children>1</max_children></unix_config>
      </${service}>
    </apps>
  </default>
  <hosts><${HOST}><activeapps><appname>${service}</appname></activeapps></${HOST}></hosts>
</opensrf>
`;
}

/**
 * Writes opensrf.xml for `service` with `pidDir` and starts `serve` of it (with `args`
 * added); resolves once the service is online.
 */
async function startServe(service: string, pidDir: string, o: { env?: Record<string, string>; args?: string[] } = {}) {
  const settings = join(dir, `${service}.xml`);
  writeFileSync(settings, settingsXml(service, pidDir));
  const p = CliProcess.start(
    [
      "serve",
      "--service",
      service,
      "--app",
      join(dir, "app.ts"),
      "--config",
      bus.coreFile,
      "--settings",
      settings,
      "--host",
      HOST,
      ...(o.args ?? []),
      "--logfile",
      "stderr",
      "--loglevel",
      "3",
    ],
    { env: o.env ?? {} },
  );
  running.push(p);
  await p.untilReady(bus.online(service));
  return { p, settings };
}

/** A plain `serve` (no --status-socket), once it has opened its status socket. */
async function serve(service: string, pidDir: string, env: Record<string, string> = {}) {
  const started = await startServe(service, pidDir, { env });
  await started.p.waitFor(/status and metrics on unix socket/);
  return started;
}

async function status(service: string, settings: string, env: Record<string, string> = {}) {
  const r = await runCli(["status", "--service", service, "--settings", settings, "--host", HOST, "--json"], { env });
  return { ...r, json: r.code === 0 ? (JSON.parse(r.stdout) as PoolStatus) : undefined };
}

/** A unix socket file nobody listens on, as a listener killed with SIGKILL leaves behind. */
function staleSocket(path: string): void {
  const script = `Bun.listen({ unix: ${JSON.stringify(path)}, socket: { data() {} } }); process.exit(0);`;
  const r = Bun.spawnSync([process.execPath, "-e", script]);
  if (r.exitCode !== 0 || !lstatSync(path).isSocket()) throw new Error(`no stale socket at ${path}`);
}

beforeAll(async () => {
  bus = await startBus();
  dir = mkdtempSync(join(tmpdir(), "osrf-status-default-"));
  writeFileSync(join(dir, "app.ts"), APP);
}, TIMEOUT);

afterAll(async () => {
  for (const p of running) await p.stop("SIGTERM");
  await bus?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, TIMEOUT);

describe("serve opens a status socket by default", () => {
  test(
    "in the pid dir when it is writable (a stale socket there is replaced); status shows the pool",
    async () => {
      const service = "test.dflt";
      const pidDir = join(dir, "run");
      mkdirSync(pidDir);
      const socket = statusSocketPath(pidDir, service);
      staleSocket(socket);
      const { p, settings } = await serve(service, pidDir);
      expect(p.output).toContain(`${service}: status and metrics on unix socket ${socket}`);

      const r = await status(service, settings);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.json?.service).toBe(service);
      expect(r.json?.processes.length).toBe(1);

      expect(await p.stop("SIGTERM")).toBe(0);
      expect(existsSync(socket)).toBe(false);
      const gone = await status(service, settings);
      expect(gone.code).toBe(3);
      expect(gone.stderr).toContain(`${service}: no status endpoint (looked for unix socket ${socket}`);
    },
    TIMEOUT,
  );

  test(
    "in a private per-user runtime dir when the pid dir is not writable; status looks there too",
    async () => {
      const service = "test.fallback";
      // Not writable even for root: its parent is a regular file.
      writeFileSync(join(dir, "file"), "");
      const pidDir = join(dir, "file/run");
      const tmp = join(dir, "tmp");
      mkdirSync(tmp);
      const env = { TMPDIR: tmp, XDG_RUNTIME_DIR: "" };
      const runtime = join(tmp, `osrf-prefork-${process.getuid!()}`);
      const socket = runtimeSocketPath(runtime, pidDir, service);
      mkdirSync(runtime, { mode: 0o700 });
      staleSocket(socket);

      const { p, settings } = await serve(service, pidDir, env);
      expect(p.output).toContain(`${service}: pid dir ${pidDir}: ENOTDIR; status socket in the per-user runtime dir`);
      expect(p.output).toContain(`${service}: status and metrics on unix socket ${socket}`);
      expect(statSync(runtime).mode & 0o777).toBe(0o700);

      const r = await status(service, settings, env);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.json?.service).toBe(service);

      // $XDG_RUNTIME_DIR comes first when set, and status still finds the tmp one.
      const xdg = join(dir, "xdg");
      mkdirSync(xdg, { mode: 0o700 });
      const both = await status(service, settings, { TMPDIR: tmp, XDG_RUNTIME_DIR: xdg });
      expect(both.code).toBe(0);
      expect(both.json?.service).toBe(service);
    },
    TIMEOUT,
  );

  test(
    '--status-socket keeps its meaning: that socket only, and "" for none',
    async () => {
      const service = "test.explicit";
      const pidDir = join(dir, "run2");
      mkdirSync(pidDir);
      const { p, settings } = await startServe(service, pidDir, { args: ["--status-socket", ""] });
      expect(p.output).not.toContain("status and metrics on");
      expect(existsSync(statusSocketPath(pidDir, service))).toBe(false);
      expect((await status(service, settings)).code).toBe(3);
    },
    TIMEOUT,
  );
});
