#!/usr/bin/env bun
/**
 * The demo: a whole OpenSRF bus on this machine, then a few requests.
 *
 *   npm run demo            # keeps running until Ctrl-C
 *   npm run demo -- --once  # stops by itself after the requests
 *
 * Starts a private ejabberd (what OpenSRF sites run) on a free loopback port, our router,
 * and three example services under the prefork pool: opensrf.math (stateless),
 * opensrf.cart (stateful) and opensrf.stream (streaming). Ctrl-C stops everything.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectTestClient } from "../devkit/client.ts";
import { TEST_USERS, writeCoreConfig } from "../devkit/osrf-config.ts";
import { CliProcess, runCli } from "../devkit/processes.ts";
import { startXmppServer, type XmppServer } from "../devkit/xmpp-server.ts";

const once = process.argv.includes("--once");
const kind = process.argv.includes("--prosody") ? "prosody" : "ejabberd";
const ROOT = resolve(import.meta.dir, "..");
const SERVICES = [
  { name: "opensrf.math", app: "examples/math.ts" },
  { name: "opensrf.cart", app: "examples/cart.ts" },
  { name: "opensrf.stream", app: "examples/stream.ts" },
];

const dir = mkdtempSync(join(tmpdir(), "osrf-demo-"));
const started: CliProcess[] = [];
let xmpp: XmppServer | undefined;
let stopping = false;

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say("\nstopping the demo stack …");
    for (const p of started.reverse()) await p.stop("SIGTERM").catch(() => {});
    await xmpp?.stop().catch(() => {});
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

async function show(title: string, args: string[], config: string): Promise<void> {
  say(`\n$ osrf-prefork request ${args.join(" ")}    # ${title}`);
  const r = await runCli(["request", "--config", config, ...args]);
  process.stdout.write(r.stdout);
  if (r.code !== 0) throw new Error(`request failed (exit ${r.code}): ${r.stderr.trim()}`);
}

try {
  say(`starting a private ${kind} on 127.0.0.1 …`);
  xmpp = await startXmppServer({ kind, users: TEST_USERS });
  const config = writeCoreConfig(xmpp, { logfile: join(dir, "osrfsys.log") });
  const settings = join(dir, "opensrf.xml");
  writeFileSync(settings, settingsXml(hostname()));
  say(`  ${kind} pid ${xmpp.pid}, port ${xmpp.port}; config in ${dir}`);

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

  const client = await connectTestClient(config, { timeout: 10, reconnect: true });
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
          .slice(-2000)}`,
      );
    await Bun.sleep(100);
  }
  say(`router and ${SERVICES.length} prefork services are up`);

  await show("stateless", ["opensrf.math", "add", "2", "2"], config);
  await show("system method", ["opensrf.math", "opensrf.system.echo", '"hello"', "42"], config);
  await show("streaming", ["opensrf.stream", "count", "5"], config);
  await show("router info", ["router", "opensrf.router.info.class.list"], config);

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

  if (once) await stopAll(0);
  say(
    `\nThe stack keeps running. In another shell:\n  bun src/cli.ts request --config ${config} opensrf.math mult 6 7\nCtrl-C stops everything.`,
  );
  await new Promise(() => {});
} catch (e) {
  process.stderr.write(`demo failed: ${(e as Error).message}\n`);
  await stopAll(1);
}
