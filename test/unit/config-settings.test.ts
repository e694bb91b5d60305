import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/config/errors.ts";
import { ABS_MAX_CHILDREN, PREFORK_DEFAULTS, readPreforkSettings } from "../../src/config/prefork-settings.ts";
import {
  hostConfig,
  lookup,
  readSettingsFile,
  readSettingsFromString,
  settingsHostNames,
} from "../../src/config/settings.ts";
import type { SettingsTree } from "../../src/config/types.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/config");
const SETTINGS = join(FIXTURES, "opensrf.xml");
/** What a real Perl settings server answered for host "localhost" (sample M). */
const SAMPLE_M = JSON.parse(readFileSync(join(FIXTURES, "host-config-sample-m.json"), "utf8")) as SettingsTree;

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).not.toContain("\n");
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

/** The sample file as installed for sample M (autotools substitutions applied). */
function installedSample(): string {
  return readFileSync(SETTINGS, "utf8")
    .replaceAll("LOCALSTATEDIR", "/openils/var")
    .replaceAll("SYSCONFDIR", "/openils/conf");
}

describe("readSettingsFile: XML to JSON as the settings server does", () => {
  const tree = readSettingsFile(SETTINGS);

  test("root attributes and sections", () => {
    expect(tree.version).toBe("0.0.3");
    expect(Object.keys(tree)).toEqual(["version", "default", "hosts"]);
    expect(settingsHostNames(tree)).toEqual(["localhost"]);
  });

  test("text stays a string unless Perl numbers are asked for", () => {
    expect(lookup(tree, "/default/apps/opensrf.math/unix_config/min_children")).toBe("5");
    const perl = readSettingsFile(SETTINGS, { perlNumbers: true });
    expect(lookup(perl, "/default/apps/opensrf.math/unix_config/min_children")).toBe(5);
    expect(lookup(perl, "/version")).toBe("0.0.3");
  });

  test("an empty element is an empty object, a single child a plain value", () => {
    expect(lookup(tree, "/default/activeapps")).toEqual({});
    expect(lookup(tree, "/default/cache/global/servers/server")).toBe("127.0.0.1:11211");
  });

  test("attributes and repeated elements", () => {
    const t = readSettingsFromString(
      `<opensrf><default><a x="1"><b>2</b><b>3</b><b><c>4</c></b></a><t y="z">text wins</t><x k="v"/><n k="1"><k>2</k></n></default></opensrf>`,
    );
    expect(lookup(t, "/default/a")).toEqual({ x: "1", b: ["2", "3", { c: "4" }] });
    // Perl drops the attributes of an element whose only content is text
    expect(lookup(t, "/default/t")).toBe("text wins");
    expect(lookup(t, "/default/x")).toEqual({ k: "v" });
    // an attribute and a child of the same name become an array
    expect(lookup(t, "/default/n/k")).toEqual(["1", "2"]);
    expect(lookup(t, "/default/a/b/2/c")).toBe("4");
  });

  test("the root must be <opensrf>", () => {
    const err = configError(() => readSettingsFromString("<config/>", "opensrf.xml"));
    expect(err.message).toContain("opensrf_core.xml");
    expect(err.path).toBe("/config");
  });

  test("missing file", () => {
    expect(configError(() => readSettingsFile(join(FIXTURES, "none.xml"))).message).toContain("ENOENT");
  });
});

describe("hostConfig compared with the real settings server (sample M)", () => {
  const host = hostConfig(readSettingsFromString(installedSample(), "opensrf.xml", { perlNumbers: true }), "localhost");

  test("apps are identical, host overrides included", () => {
    expect(host.apps).toEqual(SAMPLE_M.apps);
    expect(lookup(host, "/apps/opensrf.persist/app_settings/dbfile")).toBe("/openils/var/persist-override.db");
    expect(lookup(host, "/apps/opensrf.math/unix_config")).toEqual({
      unix_sock: "opensrf.math_unix.sock",
      unix_pid: "opensrf.math_unix.pid",
      max_requests: 1000,
      unix_log: "opensrf.math_unix.log",
      min_children: 5,
      max_children: 15,
      min_spare_children: 2,
      max_spare_children: 5,
    });
  });

  test("dirs, server_type and cache timing are identical", () => {
    expect(host.dirs).toEqual(SAMPLE_M.dirs);
    expect(host.server_type).toBe(SAMPLE_M.server_type as string);
    expect(lookup(host, "/cache/global/max_cache_time")).toBe(
      lookup(SAMPLE_M, "/cache/global/max_cache_time") as number,
    );
  });

  test("activeapps.appname is an array of names (that install listed fewer apps)", () => {
    expect(Array.isArray(lookup(SAMPLE_M, "/activeapps/appname"))).toBe(true);
    expect(lookup(host, "/activeapps/appname")).toEqual([
      "opensrf.persist",
      "opensrf.settings",
      "opensrf.math",
      "opensrf.dbmath",
      "opensrf.validator",
      "opensrf.slooooooow",
      "opensrf.cslow",
    ]);
  });

  test("string mode differs only in number types", () => {
    const strings = hostConfig(readSettingsFromString(installedSample()), "localhost");
    expect(lookup(strings, "/apps/opensrf.math/unix_config/max_children")).toBe("15");
    expect(lookup(strings, "/apps/opensrf.math/implementation")).toBe("libosrf_math.so");
  });
});

describe("hostConfig merge rules (Perl merge_perl)", () => {
  const tree = readSettingsFromString(`<opensrf>
    <default>
      <activeapps><appname>a</appname><appname>b</appname><appname>c</appname></activeapps>
      <apps><s><keepalive>5</keepalive><unix_config><min_children>1</min_children><max_children>4</max_children></unix_config></s></apps>
      <scalar>x</scalar>
    </default>
    <hosts>
      <h1>
        <activeapps><appname>z</appname><appname>y</appname></activeapps>
        <apps><s><unix_config><max_children>9</max_children></unix_config></s><t><keepalive>2</keepalive></t></apps>
        <scalar><now>object</now></scalar>
      </h1>
      <h2><apps><s><keepalive>7</keepalive></s></apps></h2>
    </hosts>
  </opensrf>`);

  test("host values override, siblings are kept", () => {
    const h = hostConfig(tree, "h1");
    expect(lookup(h, "/apps/s")).toEqual({ keepalive: "5", unix_config: { min_children: "1", max_children: "9" } });
    expect(lookup(h, "/apps/t/keepalive")).toBe("2");
    expect(lookup(h, "/scalar")).toEqual({ now: "object" });
  });

  test("arrays merge index by index, as the real server does", () => {
    expect(lookup(hostConfig(tree, "h1"), "/activeapps/appname")).toEqual(["z", "y", "c"]);
  });

  test("an unknown host gets the defaults only", () => {
    const h = hostConfig(tree, "nohost");
    expect(h).toEqual(lookup(tree, "/default") as SettingsTree);
    expect(lookup(h, "/activeapps/appname")).toEqual(["a", "b", "c"]);
  });

  test("a comma-separated host merges each, in document order", () => {
    const h = hostConfig(tree, "h2,h1");
    expect(lookup(h, "/apps/s/keepalive")).toBe("7");
    expect(lookup(h, "/apps/s/unix_config/max_children")).toBe("9");
  });

  test("the tree itself is not modified", () => {
    const before = JSON.stringify(tree);
    hostConfig(tree, "h1");
    hostConfig(tree, "h2,h1");
    expect(JSON.stringify(tree)).toBe(before);
  });
});

describe("lookup", () => {
  const t: SettingsTree = { a: { b: ["x", { c: 1 }] } };
  test("paths", () => {
    expect(lookup(t, "/a/b/1/c")).toBe(1);
    expect(lookup(t, "a/b/0")).toBe("x");
    expect(lookup(t, "/")).toBe(t);
    expect(lookup(t, "/a/nope")).toBeUndefined();
    expect(lookup(t, "/a/b/x")).toBeUndefined();
    expect(lookup(t, "/a/b/0/deeper")).toBeUndefined();
  });
  test("inherited properties are not settings", () => {
    expect(lookup(t, "/constructor")).toBeUndefined();
    expect(lookup(t, "/a/toString")).toBeUndefined();
  });
});

describe("readPreforkSettings", () => {
  const host = hostConfig(readSettingsFile(SETTINGS), "localhost");

  test("opensrf.math from the sample", () => {
    const s = readPreforkSettings(host, "opensrf.math");
    expect(s).toMatchObject({
      maxRequests: 1000,
      minChildren: 5,
      maxChildren: 15,
      maxBacklogQueue: 1000,
      keepalive: 3,
      minSpareChildren: 2,
      maxSpareChildren: 5,
    });
    expect(s.maxSessionRequests).toBeUndefined();
    // C warns when max_backlog_queue is not set
    expect(s.warnings).toEqual([
      "opensrf.xml: /apps/opensrf.math/unix_config/max_backlog_queue: max backlog queue size not defined, assuming 1000",
    ]);
  });

  test("cslow's backlog; persist's top-level max_requests is the per-session limit, not the drone's", () => {
    expect(readPreforkSettings(host, "opensrf.cslow").maxBacklogQueue).toBe(10);
    const persist = readPreforkSettings(host, "opensrf.persist");
    expect(persist.maxRequests).toBe(1000);
    expect(persist.maxSessionRequests).toBe(97);
    expect(persist.keepalive).toBe(1);
  });

  test("numbers from a Perl settings server are accepted", () => {
    const s = readPreforkSettings(SAMPLE_M, "opensrf.cslow", "settings server");
    expect(s).toMatchObject({ minChildren: 5, maxChildren: 15, maxBacklogQueue: 10, keepalive: 3 });
  });

  test("defaults for an unconfigured service, with C's warnings", () => {
    const s = readPreforkSettings({}, "my.service");
    const { warnings, ...values } = s;
    expect(values).toEqual({ ...PREFORK_DEFAULTS });
    expect(values).toMatchObject({
      maxRequests: 1000,
      minChildren: 3,
      maxChildren: 10,
      maxBacklogQueue: 1000,
      keepalive: 5,
      minSpareChildren: 0,
      maxSpareChildren: 0,
      spareGrace: 10,
      requestTimeout: 0,
      maxMemoryMb: 0,
      maxRequestsJitter: 0.1,
      shutdownTimeout: 30,
      maxChunkSize: 51200,
      maxBundleSize: 25600,
      crashBackoffMax: 60,
    });
    expect(warnings[0]).toContain("/apps/my.service: service not configured");
    expect(warnings.some((w) => w.includes("keepalive not defined, assuming 5"))).toBe(true);
  });

  function settingsFor(unix: Record<string, unknown>, top: Record<string, unknown> = {}): SettingsTree {
    return {
      apps: { svc: { keepalive: "5", ...top, unix_config: { max_backlog_queue: "5", ...unix } } },
    } as SettingsTree;
  }

  test("our keys, read from unix_config", () => {
    const s = readPreforkSettings(
      settingsFor({
        request_timeout: "2.5",
        max_memory_mb: "512",
        max_requests_jitter: "0",
        shutdown_timeout: "10",
        max_chunk_size: "1000",
        max_bundle_size: "0",
        crash_backoff_max: "120",
        spare_grace: "2.5",
      }),
      "svc",
    );
    expect(s).toMatchObject({
      requestTimeout: 2.5,
      maxMemoryMb: 512,
      maxRequestsJitter: 0,
      shutdownTimeout: 10,
      maxChunkSize: 1000,
      maxBundleSize: 0,
      crashBackoffMax: 120,
      spareGrace: 2.5,
    });
    expect(readPreforkSettings(settingsFor({ spare_grace: "0" }), "svc").spareGrace).toBe(0);
  });

  test("the drone's warm-up and JIT mode: warmup_requests, drone_jit", () => {
    expect(readPreforkSettings(settingsFor({}), "svc")).toMatchObject({ warmupRequests: 0, droneJit: "eager" });
    const s = readPreforkSettings(settingsFor({ warmup_requests: "200", drone_jit: " normal " }), "svc");
    expect(s).toMatchObject({ warmupRequests: 200, droneJit: "normal" });
    const e = configError(() => readPreforkSettings(settingsFor({ drone_jit: "fast" }), "svc"));
    expect(e.message).toContain("/apps/svc/unix_config/drone_jit");
    expect(e.message).toContain("eager, normal");
    expect(() => readPreforkSettings(settingsFor({ warmup_requests: "-1" }), "svc")).toThrow(ConfigError);
  });

  test("max_children above 256 is clamped with a warning", () => {
    const s = readPreforkSettings(settingsFor({ max_children: "1000" }), "svc");
    expect(s.maxChildren).toBe(ABS_MAX_CHILDREN);
    expect(s.warnings.some((w) => w.includes("/apps/svc/unix_config/max_children") && w.includes("256"))).toBe(true);
  });

  test("max_spare_children not above min_spare_children is raised, as Perl does", () => {
    const s = readPreforkSettings(settingsFor({ min_spare_children: "4", max_spare_children: "2" }), "svc");
    expect(s.maxSpareChildren).toBe(5);
    expect(s.warnings.some((w) => w.includes("max_spare_children"))).toBe(true);
  });

  test("an empty element counts as unset", () => {
    expect(readPreforkSettings(settingsFor({ min_children: {} }), "svc").minChildren).toBe(3);
  });

  test.each([
    ["{ min_children: 'three' }", { min_children: "three" }, {}, "/apps/svc/unix_config/min_children"],
    ["{ min_children: '-1' }", { min_children: "-1" }, {}, "/apps/svc/unix_config/min_children"],
    ["{ max_children: '0' }", { max_children: "0" }, {}, "/apps/svc/unix_config/max_children"],
    ["{ max_requests: '1.5' }", { max_requests: "1.5" }, {}, "/apps/svc/unix_config/max_requests"],
    ["{ max_requests: -3 }", { max_requests: -3 }, {}, "/apps/svc/unix_config/max_requests"],
    [
      "{ max_backlog_queue: { x: '1' } }",
      { max_backlog_queue: { x: "1" } },
      {},
      "/apps/svc/unix_config/max_backlog_queue",
    ],
    ["{ max_requests_jitter: '1' }", { max_requests_jitter: "1" }, {}, "/apps/svc/unix_config/max_requests_jitter"],
    ["{ request_timeout: 'soon' }", { request_timeout: "soon" }, {}, "/apps/svc/unix_config/request_timeout"],
    ["{ spare_grace: '-1' }", { spare_grace: "-1" }, {}, "/apps/svc/unix_config/spare_grace"],
    ["{ spare_grace: 'later' }", { spare_grace: "later" }, {}, "/apps/svc/unix_config/spare_grace"],
    ["{ keepalive: '0' }", {}, { keepalive: "0" }, "/apps/svc/keepalive"],
    ["{ keepalive: 'x' }", {}, { keepalive: "x" }, "/apps/svc/keepalive"],
    [
      "{ min_children: '20', max_children: '10' }",
      { min_children: "20", max_children: "10" },
      {},
      "/apps/svc/unix_config/min_children",
    ],
  ] as const)("bad value %s → ConfigError", (_label, unix, top, path) => {
    const err = configError(() => readPreforkSettings(settingsFor(unix, top), "svc", "/etc/opensrf.xml"));
    expect(err.path).toBe(path);
    expect(err.file).toBe("/etc/opensrf.xml");
    expect(err.message).toStartWith(`/etc/opensrf.xml: ${path}: `);
  });

  test("min > max explains itself", () => {
    const err = configError(() => readPreforkSettings(settingsFor({ min_children: "20", max_children: "10" }), "svc"));
    expect(err.message).toContain("min_children (20) is greater than max_children (10)");
  });
});
