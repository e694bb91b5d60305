/**
 * A minimal bus for shipping tests: a private XMPP server, our router (as an osrf-prefork
 * process, so OSRF_PREFORK_BIN picks the compiled binary) and a client connection.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Client } from "../src/client/client.ts";
import { connectTestClient } from "./client.ts";
import { TEST_USERS, writeCoreConfig } from "./osrf-config.ts";
import { CliProcess } from "./processes.ts";
import { startXmppServer, type XmppServer } from "./xmpp-server.ts";

export interface Bus {
  xmpp: XmppServer;
  /** opensrf_core.xml for this bus (connects to 127.0.0.1). */
  coreFile: string;
  router: CliProcess;
  client: Client;
  /** A fresh temp dir for the test's files; removed by `stop`. */
  dir: string;
  /** Resolves once the router has registered `service` (at any time so far). */
  online(service: string, timeoutMs?: number): Promise<void>;
  /** How often the router has brought `service` online so far. */
  onlineCount(service: string): number;
  /**
   * Resolves once the router has brought `service` online more than `count` times: after a
   * listener reports it is serving, its class connection on the router may still be logging in.
   */
  onlineAfter(service: string, count: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

function onlineRe(service: string): RegExp {
  return new RegExp(`class ${service.replaceAll(".", "\\.")} online`);
}

/** Starts XMPP server, router and client. */
export async function startBus(): Promise<Bus> {
  const xmpp = await startXmppServer({ users: TEST_USERS });
  const coreFile = writeCoreConfig(xmpp);
  const router = CliProcess.start(["router", "--config", coreFile, "--logfile", "stderr", "--loglevel", "3"]);
  await router.waitFor(/router online/);
  const client = await connectTestClient(coreFile);
  const dir = mkdtempSync(join(tmpdir(), "osrf-ship-"));
  return {
    xmpp,
    coreFile,
    router,
    client,
    dir,
    online: (service, timeoutMs = 20_000) => router.waitFor(onlineRe(service), timeoutMs),
    onlineCount: (service) => router.output.match(new RegExp(onlineRe(service).source, "g"))?.length ?? 0,
    onlineAfter: (service, count, timeoutMs = 20_000) =>
      router.waitFor(new RegExp(`(?:[^]*?${onlineRe(service).source}){${count + 1}}`), timeoutMs),
    async stop() {
      await client.close().catch(() => {});
      await router.stop();
      await xmpp.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `cond` holds, polling; throws `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/** Whether a process exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = Bun.spawnSync(["ps", "-o", "stat=", "-p", String(pid)])
      .stdout.toString()
      .trim();
    return stat !== "" && !stat.startsWith("Z");
  } catch {
    return true;
  }
}

const ROOT = resolve(import.meta.dir, "..");

/** The binary `bun run build.ts linux-x64` writes. */
export const LINUX_BINARY = join(ROOT, "dist/osrf-prefork-linux-x64");

/** Newest modification time under `dir` (ms). */
function newest(dir: string): number {
  let max = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    max = Math.max(max, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return max;
}

/** Builds {@link LINUX_BINARY} unless it is newer than every source file (and build.ts, package.json). */
export async function ensureLinuxBinary(): Promise<void> {
  let built = 0;
  try {
    built = statSync(LINUX_BINARY).mtimeMs;
  } catch {
    // Not built yet.
  }
  const sources = Math.max(
    newest(join(ROOT, "src")),
    ...["build.ts", "package.json"].map((f) => statSync(join(ROOT, f)).mtimeMs),
  );
  if (built > sources) return;
  const proc = Bun.spawn([process.execPath, "run", "build.ts", "linux-x64"], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`bun run build.ts linux-x64 failed (${code}):\n${out}\n${err}`);
}
