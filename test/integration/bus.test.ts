/**
 * The bus end to end on a real XMPP server: our router, listeners speaking the real
 * protocol, and `osrf-prefork request` as a subprocess.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectTestClient } from "../../devkit/client.ts";
import { TEST_USERS, writeCoreConfig } from "../../devkit/osrf-config.ts";
import { CliProcess, runCli } from "../../devkit/processes.ts";
import { TestListener } from "../../devkit/test-listener.ts";
import { startXmppServer, type XmppServer } from "../../devkit/xmpp-server.ts";
import type { Client } from "../../src/client/client.ts";

let xmpp: XmppServer;
let config: string;
let router: CliProcess;
let client: Client;
const listeners: TestListener[] = [];

async function classList(): Promise<string[]> {
  const r = await runCli(["request", "--config", config, "router", "opensrf.router.info.class.list"]);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout.trim()) as string[];
}

async function waitForClass(name: string, present: boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const has = (await client.request("router", "opensrf.router.info.class.list").first()) as string[];
    if (has.includes(name) === present) return;
    await Bun.sleep(50);
  }
  throw new Error(`class ${name} never became ${present ? "registered" : "unregistered"}`);
}

beforeAll(async () => {
  xmpp = await startXmppServer({ users: TEST_USERS });
  config = writeCoreConfig(xmpp);
  router = CliProcess.start(["router", "--config", config, "--logfile", "stderr", "--loglevel", "3"]);
  await router.waitFor(/router online/);
  client = await connectTestClient(config, { timeout: 20, reconnect: true });
  for (const label of ["a", "b"]) {
    const l = await TestListener.start(xmpp, "test.bus", label);
    l.register();
    listeners.push(l);
  }
  await waitForClass("test.bus", true);
});

afterAll(async () => {
  await client?.close();
  for (const l of listeners) await l.close().catch(() => {});
  await router?.stop();
  await xmpp?.stop();
});

describe("osrf-prefork request through the router", () => {
  test("prints each result as JSON and exits 0", async () => {
    const r = await runCli(["request", "--config", config, "test.bus", "echo", '"hello"', "42", '{"a":[1,2]}']);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual(['"hello"', "42", '{"a":[1,2]}']);
  });

  test("accepts srfsh's comma-separated params", async () => {
    const r = await runCli(["request", "--config", config, "test.bus", "echo", "1,", '"two"']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual(["1", '"two"']);
  });

  test("--raw shows the stanzas exchanged", async () => {
    const r = await runCli(["request", "--config", config, "--raw", "test.bus", "whoami"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('router_command=""');
    expect(r.stderr).toMatch(/>> <message to="router@localhost\/test.bus"/);
    expect(r.stderr).toContain('"status":"Request Complete","statusCode":"205"');
  });

  test("unknown service: clear error, non-zero exit, long before the timeout", async () => {
    const r = await runCli(["request", "--config", config, "--timeout", "60", "no.such.service", "foo"]);
    // Exit 3 with this text is the bounce from the router; waiting out the 60 s would be a timeout.
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("service no.such.service is not available");
  });

  test("unknown method: the service's 404 is shown, exit 1", async () => {
    const r = await runCli(["request", "--config", config, "--timeout", "60", "test.bus", "no.such.method", "1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("osrfMethodException 404: Method [no.such.method] not found for service test.bus");
  });

  test("bad params are refused before connecting", async () => {
    const r = await runCli(["request", "--config", config, "test.bus", "echo", "hello"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("is not JSON");
  });

  test("missing config file: one-line error naming the file", async () => {
    const r = await runCli(["request", "--config", "/nonexistent/opensrf_core.xml", "test.bus", "echo"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("/nonexistent/opensrf_core.xml");
  });
});

describe("router", () => {
  test("answers its info methods like the C router", async () => {
    expect(await classList()).toContain("test.bus");
    const stats = (await client.request("router", "opensrf.router.info.stats.class", ["test.bus"]).first()) as Record<
      string,
      number
    >;
    expect(Object.keys(stats).sort()).toEqual(listeners.map((l) => l.conn.jid).sort());
    const all = (await client.request("router", "opensrf.router.info.stats.class.node.all").first()) as Record<
      string,
      number
    >;
    expect(typeof all["test.bus"]).toBe("number");
    await expect(client.request("router", "opensrf.router.no.such").collect()).rejects.toThrow(
      "Router method not found",
    );
  });

  test("two listeners of one class share the load", async () => {
    const before = listeners.map((l) => l.served);
    const labels = await Promise.all(Array.from({ length: 20 }, () => client.request("test.bus", "whoami").first()));
    expect(new Set(labels)).toEqual(new Set(["a", "b"]));
    const served = listeners.map((l, i) => l.served - before[i]!);
    expect(served[0]! + served[1]!).toBe(20);
    expect(Math.min(...served)).toBeGreaterThanOrEqual(5);
  });

  test("a listener that disconnects gets no more requests, and none is lost", async () => {
    const [a, b] = listeners as [TestListener, TestListener];
    await a.close();
    const before = a.served;
    const labels = await Promise.all(Array.from({ length: 10 }, () => client.request("test.bus", "whoami").first()));
    expect(labels).toEqual(Array(10).fill("b"));
    expect(a.served).toBe(before);
    // The router dropped the dead node after its first bounce.
    const stats = (await client.request("router", "opensrf.router.info.stats.class", ["test.bus"]).first()) as Record<
      string,
      number
    >;
    expect(Object.keys(stats)).toEqual([b.conn.jid]);
  });

  test("unregister removes the class once its last listener leaves", async () => {
    const b = listeners[1]!;
    b.unregister();
    await waitForClass("test.bus", false);
    b.register();
    await waitForClass("test.bus", true);
  });
});
