#!/usr/bin/env bun
/**
 * The demo: a whole OpenSRF bus on this machine, then a few requests.
 *
 *   npm run demo                        # XMPP: private ejabberd, our router
 *   npm run demo -- --bus redis         # Redis (OpenSRF main): private redis-server, our router
 *   npm run demo -- --router c          # the real C router of OpenSRF 3.3 (XMPP) ...
 *   npm run demo -- --bus redis --router c   # ... or of OpenSRF main (Redis)
 *   npm run demo -- --once              # stops by itself after the requests
 *
 * Starts the private bus server on a free loopback port, a router, and three example
 * services under the prefork pool: opensrf.math (stateless), opensrf.cart (stateful) and
 * opensrf.stream (streaming) — the same modules on either bus. `--router c` builds the real
 * OpenSRF of that release from its tarball first (devkit/opensrf/build.sh; minutes, once) and
 * asks the real srfsh too. Ctrl-C stops everything.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ensurePeer, type PeerRelease } from "../devkit/opensrf/peer.ts";
import { createOpenSrfStack, type OpenSrfStack } from "../devkit/opensrf/stack.ts";
import { TEST_USERS, writeCoreConfig } from "../devkit/osrf-config.ts";
import { CliProcess, runCli } from "../devkit/processes.ts";
import { quietLogger } from "../devkit/quiet-logger.ts";
import { type RedisServer, startRedisServer } from "../devkit/redis-server.ts";
import { startXmppServer, type XmppServer } from "../devkit/xmpp-server.ts";
import type { BusKind } from "../src/bus/types.ts";
import { Client } from "../src/client/client.ts";
import { withBus } from "../src/config/bus.ts";
import { readCoreConfig } from "../src/config/core.ts";
import { connectBus } from "../src/connect/bus.ts";
import { makeResource } from "../src/protocol/ids.ts";

const USAGE = "usage: npm run demo -- [--bus xmpp|redis] [--router ours|c] [--prosody] [--once]";

function option(name: string, allowed: readonly string[], fallback: string): string {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = process.argv[i + 1] ?? "";
  if (!allowed.includes(v)) {
    process.stderr.write(`demo: ${name} takes ${allowed.join(" or ")}, not "${v}"\n${USAGE}\n`);
    process.exit(2);
  }
  return v;
}

const once = process.argv.includes("--once");
const bus = option("--bus", ["xmpp", "redis"], "xmpp") as BusKind;
const routerKind = option("--router", ["ours", "c"], "ours") as "ours" | "c";
const xmppKind = process.argv.includes("--prosody") ? "prosody" : "ejabberd";
/** The OpenSRF whose real router `--router c` runs: 3.3 speaks XMPP, main Redis. */
const release: PeerRelease = bus === "redis" ? "main" : "3.3";
const ROOT = resolve(import.meta.dir, "..");
const SERVICES = [
  { name: "opensrf.math", app: "examples/math.ts" },
  { name: "opensrf.cart", app: "examples/cart.ts" },
  { name: "opensrf.stream", app: "examples/stream.ts" },
];

const dir = mkdtempSync(join(tmpdir(), "osrf-demo-"));
const started: CliProcess[] = [];
let xmpp: XmppServer | undefined;
let redis: RedisServer | undefined;
let stack: OpenSrfStack | undefined;
let stopping = false;

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say("\nstopping the demo stack …");
    // Services first, all at once (on Redis each drains its queue for up to a poll), then the router.
    const [router, ...services] = started;
    await Promise.all(services.map((p) => p.stop("SIGTERM").catch(() => {})));
    await router?.stop("SIGTERM").catch(() => {});
    await stack?.stop().catch(() => {});
    await xmpp?.stop().catch(() => {});
    await redis?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(code);
}

process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

function settingsXml(host: string): string {
  const app = (name: string) => `
      <${name}>
        <keepalive>5</keepalive>
        <stateless>1</stateless>
        <language>typescript</language>
        <unix_config>
          <max_requests>100</max_requests>
          <min_children>1</min_children>
          <max_children>4</max_children>
          <min_spare_children>1</min_spare_children>
          <max_spare_children>2</max_spare_children>
        </unix_config>
      </${name}>`;
  return `<?xml version="1.0"?>
<opensrf version="0.0.3">
  <default>
    <apps>${SERVICES.map((s) => app(s.name)).join("")}
    </apps>
  </default>
  <hosts>
    <${host}>
      <activeapps>${SERVICES.map((s) => `<appname>${s.name}</appname>`).join("")}</activeapps>
    </${host}>
  </hosts>
</opensrf>
`;
}

/** The running bus: its opensrf_core.xml and what `request` needs to pick the bus. */
interface DemoBus {
  config: string;
  /** `--bus redis` for Redis: a real OpenSRF main opensrf_core.xml has no `<bus>`. */
  busArgs: string[];
}

/** Private bus server, our router, the example services. */
async function startOurs(): Promise<DemoBus> {
  let config: string;
  if (bus === "redis") {
    say("starting a private redis-server on 127.0.0.1 …");
    redis = await startRedisServer();
    const { opensrf, router } = redis.accounts;
    config = writeCoreConfig(
      { host: redis.host, port: redis.port, domain: "localhost" },
      { bus: "redis", accounts: { opensrf, router }, logfile: join(dir, "osrfsys.log") },
    );
    say(`  redis-server pid ${redis.pid}, port ${redis.port}; config ${config}`);
  } else {
    say(`starting a private ${xmppKind} on 127.0.0.1 …`);
    xmpp = await startXmppServer({ kind: xmppKind, users: TEST_USERS });
    config = writeCoreConfig(xmpp, { logfile: join(dir, "osrfsys.log") });
    say(`  ${xmppKind} pid ${xmpp.pid}, port ${xmpp.port}; config ${config}`);
  }
  const settings = join(dir, "opensrf.xml");
  writeFileSync(settings, settingsXml(hostname()));

  const router = CliProcess.start(["router", "--config", config, "--logfile", "stderr", "--loglevel", "2"]);
  started.push(router);
  for (const s of SERVICES) {
    started.push(
      CliProcess.start([
        "serve",
        "--service",
        s.name,
        "--app",
        join(ROOT, s.app),
        "--config",
        config,
        "--settings",
        settings,
        "--logfile",
        join(dir, `${s.name}.log`),
      ]),
    );
  }
  return { config, busArgs: bus === "redis" ? ["--bus", "redis"] : [] };
}

/** The real OpenSRF of the release (its bus server and C router), our example services behind it. */
async function startReal(): Promise<DemoBus> {
  say(`building (or reusing) the real OpenSRF ${release} …`);
  await ensurePeer(release);
  say(`starting a private ${bus === "redis" ? "redis-server" : "ejabberd"} and the real C router …`);
  // Our modules take the example names: they replace the C opensrf.math of the stack's defaults.
  stack = await createOpenSrfStack({
    release,
    services: SERVICES.map((s) => ({
      name: s.name,
      language: "typescript",
      implementation: join(ROOT, s.app),
      keepalive: 5,
      unixConfig: { minChildren: 1, maxChildren: 4, minSpareChildren: 1, maxSpareChildren: 2 },
    })),
  });
  await stack.startRouter();
  for (const s of SERVICES) await stack.servePrefork(s.name, join(ROOT, s.app));
  say(`  config ${stack.paths.core}`);
  return { config: stack.paths.core, busArgs: bus === "redis" ? ["--bus", "redis"] : [] };
}

async function show(title: string, args: string[], demo: DemoBus): Promise<void> {
  say(`\n$ osrf-prefork request ${[...demo.busArgs, ...args].join(" ")}    # ${title}`);
  const r = await runCli(["request", "--config", demo.config, ...demo.busArgs, ...args]);
  process.stdout.write(r.stdout);
  if (r.code !== 0) throw new Error(`request failed (exit ${r.code}): ${r.stderr.trim()}`);
}

try {
  const demo = routerKind === "c" ? await startReal() : await startOurs();
  const logger = quietLogger();
  const cfg = withBus(readCoreConfig(demo.config).opensrf, { flag: bus });
  const conn = await connectBus(cfg, { resource: makeResource("", "demo"), logger, reconnect: true });
  const client = new Client({ transport: conn, routerName: cfg.routerName, logger, timeout: 10, ownTransport: true });
  for (let i = 0; ; i++) {
    const classes = (await client
      .request("router", "opensrf.router.info.class.list")
      .first()
      .catch(() => [])) as string[];
    if (SERVICES.every((s) => classes.includes(s.name))) break;
    if (i > 300)
      throw new Error(
        `services did not register: ${started
          .map((p) => p.output)
          .join("\n")
          .slice(-2000)}${stack ? `\n${stack.logTail(20)}` : ""}`,
      );
    await Bun.sleep(100);
  }
  const routerName = routerKind === "c" ? `the real C router of OpenSRF ${release}` : "our router";
  say(`${routerName} and ${SERVICES.length} prefork services are up on ${bus === "redis" ? "Redis" : "XMPP"}`);

  await show("stateless", ["opensrf.math", "add", "2", "2"], demo);
  await show("system method", ["opensrf.math", "opensrf.system.echo", '"hello"', "42"], demo);
  await show("streaming", ["opensrf.stream", "count", "5"], demo);
  await show("router info", ["router", "opensrf.router.info.class.list"], demo);

  say("\n# stateful: CONNECT, four requests to the same drone, DISCONNECT");
  const cart = client.session("opensrf.cart");
  await cart.connect();
  say(`connected to ${cart.remote}`);
  await cart.request("add_item", ["apple", 0.5, 3]).collect();
  await cart.request("add_item", ["pear", 0.75, 2]).collect();
  say(`cart list  → ${JSON.stringify(await cart.request("list").first())}`);
  say(`cart total → ${JSON.stringify(await cart.request("total").first())}`);
  cart.disconnect();
  await client.close();

  if (stack) {
    say(`\n$ srfsh    # the real OpenSRF ${release} srfsh: request opensrf.math mult 6, 7`);
    const run = await stack.srfsh("request opensrf.math mult 6, 7");
    const data = run.replies[0]?.data;
    if (!data?.length) throw new Error(`srfsh got no answer:\n${run.stdout}${run.stderr}`);
    say(`Received Data: ${JSON.stringify(data[0])}`);
  }

  if (once) await stopAll(0);
  say(
    `\nThe stack keeps running. In another shell:\n  bun src/cli.ts request --config ${demo.config} ${demo.busArgs.join(" ")}${demo.busArgs.length ? " " : ""}opensrf.math mult 6 7\nCtrl-C stops everything.`,
  );
  await new Promise(() => {});
} catch (e) {
  process.stderr.write(`demo failed: ${(e as Error).message}\n`);
  await stopAll(1);
}
