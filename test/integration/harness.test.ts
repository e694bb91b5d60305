// The test harness itself, on prosody: private server start, accounts, routing, clean stop.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { xml } from "@xmpp/client";
import { legacyLogin } from "../../devkit/legacy-auth.ts";
import { type ClientSession, xmppClientLogin } from "../../devkit/xmpp-client-login.ts";
import { processesOf, startXmppServer, type XmppServer } from "../../devkit/xmpp-server.ts";

// bun's default is 5 s per test and hook; server start, restart and stop can take longer on a busy machine.
setDefaultTimeout(60_000);

describe("harness: prosody", () => {
  let server: XmppServer;
  const sessions: ClientSession[] = [];

  beforeAll(async () => {
    server = await startXmppServer({ kind: "prosody" });
  }, 60_000);

  afterAll(async () => {
    for (const s of sessions) await s.close();
    await server?.stop();
  }, 60_000);

  test("starts a private loopback server", () => {
    expect(server.kind).toBe("prosody");
    expect(server.host).toBe("127.0.0.1");
    expect(server.domain).toBe("localhost");
    expect(server.port).toBeGreaterThan(0);
    expect(existsSync(server.dir)).toBe(true);
    expect(processesOf(server)).toContain(server.pid);
  });

  test("registers users that can log in with @xmpp/client", async () => {
    await server.addUser("alice", "alice-pw");
    await server.addUser("bob", "bob-pw");
    sessions.push(await xmppClientLogin(server, "alice", "alice-pw", "a1"));
    sessions.push(await xmppClientLogin(server, "bob", "bob-pw", "b1"));
    expect(sessions.map((s) => s.jid)).toEqual(["alice@localhost/a1", "bob@localhost/b1"]);
  });

  test("routes a message with an <opensrf> child element intact", async () => {
    const [alice, bob] = sessions as [ClientSession, ClientSession];
    await alice.xmpp.send(
      xml(
        "message",
        { to: bob.jid },
        xml("opensrf", { router_command: "x", router_class: "c", osrf_xid: "xid-1" }),
        xml("thread", {}, "thread-1"),
        xml("body", {}, '[{"__c":"osrfMessage"}]'),
      ),
    );
    const got = await bob.next((el) => el.is("message"));
    expect(got.attrs.from).toBe(alice.jid);
    const osrf = got.getChild("opensrf");
    expect(osrf?.attrs.router_command).toBe("x");
    expect(osrf?.attrs.router_class).toBe("c");
    expect(osrf?.attrs.osrf_xid).toBe("xid-1");
    expect(got.getChildText("thread")).toBe("thread-1");
    expect(got.getChildText("body")).toBe('[{"__c":"osrfMessage"}]');
  });

  test("legacy auth: plain <password> works, <digest> is refused (prosody limitation)", async () => {
    const base = { host: server.host, port: server.port, domain: server.domain, user: "alice", password: "alice-pw" };
    const perl = await legacyLogin({ ...base, resource: "perl", mode: "plain" });
    perl.close();
    await expect(legacyLogin({ ...base, resource: "c", mode: "digest" })).rejects.toThrow(/legacy digest login/);
  });

  test("restart keeps port and accounts, also after a crash", async () => {
    for (const s of sessions.splice(0)) await s.close();
    const { port, pid } = server;
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(pid);
    process.kill(server.pid, "SIGKILL");
    await server.restart();
    expect(server.port).toBe(port);
    sessions.push(await xmppClientLogin(server, "bob", "bob-pw", "after-restart"));
  });

  test("stop leaves no process and no directory", async () => {
    for (const s of sessions.splice(0)) await s.close();
    await server.stop();
    expect(processesOf(server)).toEqual([]);
    expect(existsSync(server.dir)).toBe(false);
    await server.stop(); // idempotent
  });
});
