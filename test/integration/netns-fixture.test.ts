/**
 * The test hosts of devkit/netns: what the scale-out tests rely on — each host its own
 * address, name and namespace; nothing but the private subnet and loopback; nothing added to
 * the root namespace; a cut link stops traffic and a restored one carries it again; kill-all
 * leaves nothing; a killed run's leftovers are removed by the next one, a live run's are not.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { isAlive } from "../../devkit/load.ts";
import {
  NETNS_PREFIX,
  netnsAvailableForTests,
  pidsInNamespace,
  removeStaleNetworks,
  type TestHost,
  TestNetwork,
} from "../../devkit/netns/network.ts";

const HAVE = netnsAvailableForTests("network-namespace test hosts");
const ROOT = resolve(import.meta.dir, "../..");

let net: TestNetwork;
let rootLinksBefore: string;

const rootLinks = () =>
  Bun.spawnSync(["ip", "-o", "link", "show"])
    .stdout.toString()
    .split("\n")
    .map((l) => l.replace(/^\d+: /, "").split(":")[0])
    .sort()
    .join(" ");

/** A TCP echo server on `host`:port, answering one line per connection. */
function echoServer(host: TestHost, port: number) {
  return host.spawn([
    process.execPath,
    "-e",
    `Bun.listen({ hostname: "0.0.0.0", port: ${port}, socket: { data(s, d) { s.write("echo:" + d); s.end(); } } }); console.log("up");`,
  ]);
}

/** Connects from `host` to `target`:port and sends "hi" (2 s bound); the answer, or "fail: …". */
async function call(host: TestHost, target: string, port: number): Promise<string> {
  const script = `
    const t = setTimeout(() => { console.log("fail: timeout"); process.exit(0); }, 2000);
    try {
      await Bun.connect({ hostname: ${JSON.stringify(target)}, port: ${port}, socket: {
        open(s) { s.write("hi"); },
        data(_s, d) { console.log(String(d)); clearTimeout(t); process.exit(0); },
        error(_s, e) { console.log("fail: " + e.message); process.exit(0); },
        connectError(_s, e) { console.log("fail: " + e.message); process.exit(0); },
      } });
    } catch (e) { console.log("fail: " + e.message); process.exit(0); }`;
  const r = await host.run([process.execPath, "-e", script], { cwd: ROOT, timeoutMs: 10_000 });
  return r.stdout.trim() || `fail: ${r.stderr.trim()}`;
}

describe.skipIf(!HAVE)("network-namespace test hosts", () => {
  beforeAll(async () => {
    rootLinksBefore = rootLinks();
    net = await TestNetwork.create({ hosts: [{ name: "a" }, { name: "b", aliases: { "xmpp.test": "a" } }] });
  }, 30_000);

  afterAll(async () => {
    await net?.destroy();
  });

  test("each host: its own name and address, the others' names resolve, only loopback and the private subnet", async () => {
    const b = net.host("b");
    const r = await b.run([
      "sh",
      "-c",
      "hostname; getent hosts hosta; getent hosts xmpp.test; ip -o addr show; ip route",
    ]);
    const [name, hosta, alias, ...rest] = r.stdout.trim().split("\n");
    expect(name).toBe("hostb");
    expect(hosta).toMatch(/^10\.77\.0\.1\s+hosta$/);
    expect(alias).toMatch(/^10\.77\.0\.1\s+xmpp\.test$/);
    const addrs = rest.filter((l) => / inet6? /.test(l)).map((l) => l.split(/\s+/)[3]);
    expect(addrs.sort()).toEqual(["10.77.0.2/24", "127.0.0.1/8"]);
    // One route: the subnet itself. No default route, nothing to forward anywhere else.
    expect(rest.filter((l) => !/ inet6? /.test(l))).toEqual([
      "10.77.0.0/24 dev eth0 proto kernel scope link src 10.77.0.2",
    ]);
    // The root namespace got nothing: no link, no address.
    expect(rootLinks()).toBe(rootLinksBefore);
  });

  test("TCP between hosts; a cut link stops it, a restored one carries it again", async () => {
    const a = net.host("a");
    const b = net.host("b");
    const server = echoServer(a, 7000);
    for await (const _ of server.stdout as ReadableStream<Uint8Array>) break; // "up"
    expect(await call(b, "hosta", 7000)).toBe("echo:hi");
    await b.cutLink();
    expect(await call(b, "hosta", 7000)).toStartWith("fail");
    await b.restoreLink();
    expect(await call(b, "hosta", 7000)).toBe("echo:hi");
    // A host's loopback is its own: a server on the machine's 127.0.0.1 is not reachable from it.
    const outside = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data: (sock) => {
          sock.end("outside");
        },
      },
    });
    expect(await call(b, "127.0.0.1", outside.port)).toStartWith("fail");
    outside.stop(true);
    server.kill("SIGKILL");
    await server.exited;
  }, 60_000);

  test("killAll leaves no process on the host", async () => {
    const a = net.host("a");
    for (let i = 0; i < 3; i++) a.spawn(["sleep", "300"]);
    await Bun.sleep(200);
    expect(a.pids().length).toBe(3);
    const { signalled, at } = await a.killAll("SIGTERM");
    expect(signalled).toBe(3);
    expect(at).toBeGreaterThan(0);
    expect(a.pids()).toEqual([]);
  });

  test("a killed run's hosts are removed by the next run; a live run's are left alone", async () => {
    // A child creates a network with a process on it and is SIGKILLed: nothing of its own cleans up.
    const script = `
      import { TestNetwork } from ${JSON.stringify(join(ROOT, "devkit/netns/network.ts"))};
      const n = await TestNetwork.create({ hosts: [{ name: "x" }] });
      n.host("x").spawn(["sleep", "300"]);
      console.log(n.id);
      await Bun.sleep(300_000);`;
    const child = Bun.spawn([process.execPath, "-e", script], { cwd: ROOT, stdout: "pipe", stderr: "inherit" });
    let id = "";
    for await (const chunk of child.stdout) {
      id = new TextDecoder().decode(chunk).trim();
      break;
    }
    expect(id).toStartWith(NETNS_PREFIX);
    await Bun.sleep(300);
    const sleepers = pidsInNamespace(`${id}-x`);
    expect(sleepers.length).toBe(1);
    child.kill("SIGKILL");
    await child.exited;
    const ours = readdirSync("/run/netns").filter((n) => n.startsWith(net.id));
    expect(removeStaleNetworks()).toContain(id);
    expect(readdirSync("/run/netns").filter((n) => n.startsWith(id))).toEqual([]);
    expect(readdirSync("/etc/netns").filter((n) => n.startsWith(id))).toEqual([]);
    expect(isAlive(sleepers[0]!)).toBe(false); // killed (a zombie at most, until its new parent reaps it)
    // This (live) run's namespaces are still there.
    expect(readdirSync("/run/netns").filter((n) => n.startsWith(net.id))).toEqual(ours);
  }, 60_000);
});
