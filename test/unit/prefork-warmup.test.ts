/**
 * A drone's warm-up before `ready` (src/prefork/warmup.ts) and the JIT settings a listener
 * starts drones with (src/prefork/jit.ts). What they do, not how fast they make anything.
 */
import { describe, expect, test } from "bun:test";
import { defineService } from "../../src/app/define.ts";
import type { OutgoingBusMessage } from "../../src/bus/types.ts";
import type { ClientConfig } from "../../src/config/types.ts";
import { wireEncoder } from "../../src/connect/bus.ts";
import { BOOT_JIT_SCALE_ENV, bootJitScale, droneJitEnv, EAGER_JIT_ENV } from "../../src/prefork/jit.ts";
import { warmRequestPath } from "../../src/prefork/warmup.ts";
import { decodeBody } from "../../src/protocol/codec.ts";
import { parseStanza } from "../../src/xmpp/stanza.ts";

const CLIENT: ClientConfig = {
  domain: "localhost",
  username: "opensrf",
  passwd: "pw-never-logged",
  port: 1,
  server: "127.0.0.1",
  routerName: "router",
  routers: [],
  msgSizeWarn: 1_800_000,
  maxStanzaSize: 10_485_760,
  logfile: "stderr",
  loglevel: 0,
};

const SETTINGS = { keepalive: 5, maxChunkSize: 51_200, maxBundleSize: 25_600 };

describe("warmRequestPath", () => {
  test("runs echo requests and sessions through a host of its own, never the service's methods", async () => {
    const calls: string[] = [];
    const definition = defineService({
      name: "svc",
      methods: [{ name: "effect", handler: () => void calls.push("effect") }],
      childInit: () => void calls.push("childInit"),
    });
    const texts: OutgoingBusMessage[] = [];
    const xmpp = await wireEncoder(CLIENT);
    const r = await warmRequestPath({
      service: "svc",
      definition,
      client: CLIENT,
      // Level 3 writes activity lines: they must go to the null device, not the drone's log.
      log: { loglevel: 3 },
      settings: SETTINGS,
      logProtect: [],
      encode: (m, from) => {
        texts.push(m);
        return xmpp(m, from);
      },
      busKind: "xmpp",
      requests: 20,
      batch: 7,
    });
    if (r instanceof Error) throw r;
    expect(r.messages).toBe(20);
    // 18 stateless echoes (one reply stanza each) + 2 sessions (CONNECT's 200, the echo's replies).
    expect(r.wireTexts).toBe(18 + 2 * 2);
    expect(texts.length).toBe(r.wireTexts);
    expect(calls).toEqual([]);
    const kinds = texts.flatMap((m) => decodeBody(m.body ?? "").map((x) => x.type));
    expect(kinds.filter((k) => k === "RESULT").length).toBe(20 * 2);
    expect(kinds).toContain("STATUS");
    // What was encoded is what the bus would write: it parses back as a stanza to the caller.
    const back = parseStanza(xmpp(texts[0]!, "opensrf@localhost/svc_drone"));
    expect(back.to).toStartWith("opensrf@localhost/_warmup_");
  });

  test("Redis: the envelope encoder", async () => {
    const r = await warmRequestPath({
      service: "svc",
      definition: defineService({ name: "svc", methods: [] }),
      client: { ...CLIENT, bus: "redis" },
      log: { loglevel: 0 },
      settings: SETTINGS,
      logProtect: [],
      encode: await wireEncoder({ ...CLIENT, bus: "redis" }),
      busKind: "redis",
      requests: 3,
    });
    if (r instanceof Error) throw r;
    expect(r.messages).toBe(3);
    expect(r.wireChars).toBeGreaterThan(0);
  });

  test("a failure is returned, not thrown", async () => {
    const r = await warmRequestPath({
      service: "svc",
      definition: defineService({ name: "svc", methods: [] }),
      client: CLIENT,
      log: { loglevel: 0 },
      settings: { ...SETTINGS, keepalive: -1 },
      logProtect: [],
      encode: await wireEncoder(CLIENT),
      busKind: "xmpp",
      requests: 3,
    });
    expect(r).toBeInstanceOf(Error);
  });
});

describe("drone_jit", () => {
  test("eager: lowered thresholds and the start-up scale; normal: nothing", () => {
    const env = droneJitEnv("eager", {});
    expect(env).toEqual({ ...EAGER_JIT_ENV });
    expect(Number(env.BUN_JSC_thresholdForOptimizeAfterWarmUp)).toBeLessThan(1000);
    expect(bootJitScale(env)).toBeGreaterThan(1);
    expect(droneJitEnv("normal", {})).toEqual({});
  });

  test("a BUN_JSC_ option the listener was started with is left to it", () => {
    const env = droneJitEnv("eager", { BUN_JSC_thresholdForJITAfterWarmUp: "7" });
    expect(env.BUN_JSC_thresholdForJITAfterWarmUp).toBeUndefined();
    expect(env.BUN_JSC_thresholdForOptimizeSoon).toBe(EAGER_JIT_ENV.BUN_JSC_thresholdForOptimizeSoon!);
  });

  test("the start-up scale: 1 unless a number above 1 is given", () => {
    expect(bootJitScale({})).toBe(1);
    expect(bootJitScale({ [BOOT_JIT_SCALE_ENV]: "junk" })).toBe(1);
    expect(bootJitScale({ [BOOT_JIT_SCALE_ENV]: "0.5" })).toBe(1);
    expect(bootJitScale({ [BOOT_JIT_SCALE_ENV]: "20" })).toBe(20);
  });
});
