/**
 * Which bus a process speaks: `--bus`, else OSRF_BUS, else `<bus>`, else XMPP; the Redis port
 * default; and an OpenSRF main install's own opensrf_core.xml, read from its tarball, loading
 * unchanged.
 */
import { describe, expect, test } from "bun:test";
import { peerSource } from "../../devkit/opensrf/peer.ts";
import { busOf, withBus } from "../../src/config/bus.ts";
import { readCoreConfigFromString } from "../../src/config/core.ts";
import { ConfigError } from "../../src/config/errors.ts";
import { readPreforkSettings } from "../../src/config/prefork-settings.ts";
import { hostConfig, readSettingsFromString } from "../../src/config/settings.ts";

const core = (inner: string) =>
  readCoreConfigFromString(
    `<config><opensrf><domain>private.localhost</domain><username>opensrf</username><passwd>pw</passwd>${inner}</opensrf></config>`,
  ).opensrf;

describe("bus selection", () => {
  test("XMPP on port 5222 when nothing says otherwise", () => {
    const cfg = withBus(core(""), { env: {} });
    expect(cfg.bus).toBe("xmpp");
    expect(cfg.port).toBe(5222);
  });

  test("<bus>redis</bus> alone: Redis on 6379", () => {
    const cfg = withBus(core("<bus>Redis</bus>"), { env: {} });
    expect(cfg.bus).toBe("redis");
    expect(cfg.port).toBe(6379);
  });

  test("OSRF_BUS beats <bus>, --bus beats both", () => {
    const c = core("<bus>xmpp</bus>");
    expect(busOf(c, { env: { OSRF_BUS: "redis" } })).toBe("redis");
    expect(busOf(c, { flag: "xmpp", env: { OSRF_BUS: "redis" } })).toBe("xmpp");
    expect(busOf(core("<bus>redis</bus>"), { env: {} })).toBe("redis");
  });

  test("a chosen bus keeps the file's <port> and changes only a defaulted one", () => {
    expect(withBus(core("<port>6380</port>"), { flag: "redis", env: {} }).port).toBe(6380);
    expect(withBus(core(""), { flag: "redis", env: {} }).port).toBe(6379);
    expect(withBus(core("<bus>redis</bus>"), { flag: "xmpp", env: {} }).port).toBe(5222);
  });

  test("unknown names are one-line ConfigErrors naming their source", () => {
    expect(() => withBus(core(""), { flag: "amqp", env: {} })).toThrow(/--bus: unknown bus "amqp"/);
    expect(() => withBus(core(""), { env: { OSRF_BUS: "zmq" } })).toThrow(/OSRF_BUS: unknown bus "zmq"/);
    expect(() => core("<bus>stomp</bus>")).toThrow(ConfigError);
    expect(() => core("<bus>stomp</bus>")).toThrow(/\/config\/opensrf\/bus: invalid value "stomp"/);
  });
});

const MAIN = peerSource("main");

/** One example file of the main tarball, as text. */
function example(name: string): string {
  const proc = Bun.spawnSync(["tar", "-xzOf", MAIN.path, "--wildcards", `*/examples/${name}`]);
  expect(proc.exitCode).toBe(0);
  return proc.stdout.toString();
}

describe.skipIf(!MAIN.exists)("an OpenSRF main install's config files", () => {
  test("opensrf.xml loads unchanged: opensrf.math's prefork settings", () => {
    const tree = readSettingsFromString(example("opensrf.xml.example"), "opensrf.xml.example");
    const math = readPreforkSettings(hostConfig(tree, "localhost"), "opensrf.math");
    expect(math.maxChildren).toBeGreaterThan(0);
    expect(math.keepalive).toBeGreaterThan(0);
  });

  test("opensrf_core.xml loads unchanged and, with OSRF_BUS=redis, reaches Redis as its comments say", () => {
    const file = readCoreConfigFromString(example("opensrf_core.xml.example"), "opensrf_core.xml.example");
    const cfg = withBus(file.opensrf, { env: { OSRF_BUS: "redis" } });
    expect(cfg).toMatchObject({
      bus: "redis",
      domain: "private.localhost",
      username: "opensrf",
      port: 6379,
      routerName: "router",
    });
    expect(cfg.routers.map((r) => r.domain)).toEqual(["public.localhost", "private.localhost"]);
    expect(file.routers.length).toBeGreaterThan(0);
  });
});
