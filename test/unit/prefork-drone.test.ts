import { describe, expect, test } from "bun:test";
import type { ClientConfig } from "../../src/config/types.ts";
import { type DroneChannel, DroneRuntime } from "../../src/prefork/drone.ts";
import type { DroneInit, DroneToListener } from "../../src/prefork/ipc.ts";

class FakeChannel implements DroneChannel {
  sent: DroneToListener[] = [];
  private onMsg: (m: unknown) => void = () => {};
  private onGone: () => void = () => {};
  send(msg: DroneToListener, flushed?: () => void): void {
    this.sent.push(msg);
    flushed?.();
  }
  onMessage(cb: (m: unknown) => void): void {
    this.onMsg = cb;
  }
  onDisconnect(cb: () => void): void {
    this.onGone = cb;
  }
  deliver(m: unknown): void {
    this.onMsg(m);
  }
  disconnect(): void {
    this.onGone();
  }
}

const CLIENT: ClientConfig = {
  domain: "localhost",
  username: "opensrf",
  passwd: "pw-never-logged",
  port: 1, // nothing listens: a login would fail
  server: "127.0.0.1",
  routerName: "router",
  routers: [],
  msgSizeWarn: 1_800_000,
  maxStanzaSize: 10_485_760,
  logfile: "stderr",
  loglevel: 0,
};

function init(appPath: string): DroneInit {
  return {
    service: "svc",
    appPath,
    hostname: "h",
    client: CLIENT,
    logProtect: [],
    settings: { keepalive: 5, maxChunkSize: 51200, maxBundleSize: 25600, maxMemoryMb: 0, warmupRequests: 0 },
    maxRequests: 10,
    log: { logfile: "stderr", loglevel: 0 },
  };
}

function start() {
  const channel = new FakeChannel();
  const exits: number[] = [];
  let exited: () => void = () => {};
  const done = new Promise<void>((r) => (exited = r));
  const drone = new DroneRuntime(channel, (code) => {
    exits.push(code);
    exited();
  });
  drone.start();
  return { channel, exits, done };
}

describe("DroneRuntime", () => {
  test("a missing app module: reports init_failed with the reason and exits 1", async () => {
    const { channel, exits, done } = start();
    channel.deliver({ type: "init", init: init("/nonexistent/app.ts") });
    await done;
    expect(exits).toEqual([1]);
    expect(channel.sent).toEqual([
      {
        type: "exiting",
        reason: "init_failed",
        served: 0,
        detail: "service module /nonexistent/app.ts does not exist (check --app)",
      },
    ]);
  });

  test("an XMPP login that fails is a start-up failure too; requests queued meanwhile are not served", async () => {
    const { channel, exits, done } = start();
    channel.deliver({ type: "init", init: init(`${import.meta.dir}/../../examples/math.ts`) });
    channel.deliver({
      type: "request",
      stanza: {
        to: "",
        from: "",
        thread: "t",
        body: "[]",
        routerFrom: "",
        routerTo: "",
        routerClass: "",
        routerCommand: "",
        xid: "",
      },
    });
    await done;
    expect(exits).toEqual([1]);
    expect(channel.sent).toHaveLength(1);
    expect(channel.sent[0]).toMatchObject({ type: "exiting", reason: "init_failed" });
    expect((channel.sent[0] as { detail: string }).detail).toContain("127.0.0.1:1");
  });

  test("stop before init: exits at once", async () => {
    const { channel, exits, done } = start();
    channel.disconnect();
    await done;
    expect(exits).toEqual([0]);
  });

  test("bad listener messages are reported, not fatal", () => {
    const { channel, exits } = start();
    const writes: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => {
      writes.push(String(s));
      return true;
    }) as typeof process.stderr.write;
    try {
      channel.deliver({ type: "request" });
      channel.deliver("junk");
    } finally {
      process.stderr.write = orig;
    }
    expect(writes.join("")).toContain("bad IPC message: request.stanza is not a stanza");
    expect(exits).toEqual([]);
    channel.disconnect();
  });
});
