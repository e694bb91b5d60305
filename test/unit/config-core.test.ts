import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadClientConfig } from "../../src/config/client.ts";
import {
  readClientConfig,
  readClientConfigFromString,
  readCoreConfig,
  readCoreConfigFromString,
} from "../../src/config/core.ts";
import { ConfigError } from "../../src/config/errors.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/config");
const CORE = join(FIXTURES, "opensrf_core.xml");
const SRFSH = join(FIXTURES, "srfsh.xml");

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const err = e as ConfigError;
    expect(err.message).not.toContain("\n");
    return err;
  }
  throw new Error("expected a ConfigError");
}

/** A minimal valid core config with `extra` inside <opensrf> and `tail` after it. */
function core(extra = "", tail = ""): string {
  return `<config><opensrf><domain>d.example</domain><username>u</username><passwd>p</passwd>${extra}</opensrf>${tail}</config>`;
}

describe("readCoreConfig on the OpenSRF 3.3 sample", () => {
  const cfg = readCoreConfig(CORE);

  test("client section", () => {
    expect(cfg.file).toBe(CORE);
    expect(cfg.opensrf).toMatchObject({
      domain: "private.localhost",
      username: "opensrf",
      passwd: "password",
      port: 5222,
      server: "private.localhost",
      routerName: "router",
      msgSizeWarn: 1800000,
      maxStanzaSize: 10485760,
      settingsConfig: "SYSCONFDIR/opensrf.xml",
      loglevel: 3,
      loglength: 1536,
    });
  });

  test("the commented-out second <logfile> (and <syslog>) are invisible", () => {
    expect(cfg.opensrf.logfile).toBe("LOCALSTATEDIR/log/osrfsys.log");
    expect(cfg.opensrf.syslog).toBeUndefined();
    expect(cfg.opensrf.logtag).toBeUndefined();
  });

  test("registration routers, with the public one filtered to opensrf.math", () => {
    expect(cfg.opensrf.routers).toEqual([
      { name: "router", domain: "public.localhost", services: ["opensrf.math"] },
      { name: "router", domain: "private.localhost" },
    ]);
  });

  test("router processes with trusted domains and transport", () => {
    expect(cfg.routers).toHaveLength(2);
    const [pub, priv] = cfg.routers;
    expect(pub).toMatchObject({
      trustedServers: ["private.localhost"],
      trustedClients: ["private.localhost", "public.localhost"],
      transport: {
        server: "public.localhost",
        port: 5222,
        username: "router",
        password: "password",
        resource: "router",
        connectTimeout: 10,
        maxReconnectAttempts: 5,
      },
      host: "public.localhost",
      logfile: "LOCALSTATEDIR/log/router.log",
      loglevel: 2,
    });
    expect(pub?.name).toBeUndefined();
    expect(priv).toMatchObject({
      trustedServers: ["private.localhost"],
      trustedClients: ["private.localhost"],
      transport: { server: "private.localhost" },
      loglevel: 4,
    });
  });

  test("log_protect holds only comments in the sample: empty", () => {
    expect(cfg.logProtect).toEqual([]);
  });
});

describe("readClientConfig", () => {
  test("srfsh.xml", () => {
    const c = readClientConfig(SRFSH);
    expect(c).toMatchObject({
      domain: "private.localhost",
      username: "opensrf",
      passwd: "password",
      port: 5222,
      routerName: "router",
      logfile: "LOCALSTATEDIR/log/srfsh.log",
      loglevel: 4,
      client: true,
      routers: [{ name: "router", domain: "private.localhost" }],
    });
  });

  test("the gateway section of opensrf_core.xml", () => {
    const c = readClientConfig(CORE, "/config/gateway");
    expect(c).toMatchObject({ domain: "public.localhost", logfile: "LOCALSTATEDIR/log/gateway.log", client: true });
    expect(readClientConfig(CORE, "gateway").domain).toBe("public.localhost");
  });

  test("opensrf_core.xml without a root argument reads /config/opensrf", () => {
    expect(readClientConfig(CORE).domain).toBe("private.localhost");
    expect(loadClientConfig(CORE).domain).toBe("private.localhost");
    expect(loadClientConfig(SRFSH).loglevel).toBe(4);
  });

  test("a missing section names the path", () => {
    const err = configError(() => readClientConfig(CORE, "/config/nope"));
    expect(err.path).toBe("/config/nope");
    expect(err.message).toStartWith(`${CORE}: /config/nope: missing client section`);
  });

  test("client flag is case-insensitive like C's strcasecmp", () => {
    const xml = "<srfsh><domain>d</domain><username>u</username><passwd>p</passwd><client>TRUE</client></srfsh>";
    expect(readClientConfigFromString(xml).client).toBe(true);
  });
});

describe("defaults and our additions", () => {
  test("defaults", () => {
    const c = readCoreConfigFromString(core()).opensrf;
    expect(c.port).toBe(5222);
    expect(c.loglevel).toBe(3);
    expect(c.logfile).toBe("stderr");
    expect(c.msgSizeWarn).toBe(1800000);
    expect(c.maxStanzaSize).toBe(10485760);
    expect(c.server).toBe("d.example");
    expect(c.routerName).toBe("router");
    // no <routers>: one router, named router_name, on our domain
    expect(c.routers).toEqual([{ name: "router", domain: "d.example" }]);
  });

  test("<server> and <max_stanza_size>", () => {
    const c = readCoreConfigFromString(
      core("<server>127.0.0.1</server><max_stanza_size>2048</max_stanza_size>"),
    ).opensrf;
    expect(c.server).toBe("127.0.0.1");
    expect(c.maxStanzaSize).toBe(2048);
  });

  test("values are trimmed", () => {
    const c = readCoreConfigFromString(core("<port>\n  5223\n</port><router_name> r </router_name>")).opensrf;
    expect(c.port).toBe(5223);
    expect(c.routerName).toBe("r");
  });

  test("simple router config: text entries are domains named by router_name", () => {
    const c = readCoreConfigFromString(
      core("<router_name>rtr</router_name><routers><router>a.example</router><router> b.example </router></routers>"),
    ).opensrf;
    expect(c.routers).toEqual([
      { name: "rtr", domain: "a.example" },
      { name: "rtr", domain: "b.example" },
    ]);
  });

  test("an empty <services> does not filter (as C)", () => {
    const c = readCoreConfigFromString(
      core("<routers><router><name>r</name><domain>x</domain><services/></router></routers>"),
    );
    expect(c.opensrf.routers).toEqual([{ name: "r", domain: "x" }]);
  });

  test("the first of several <domain> wins, as in C", () => {
    const xml =
      "<config><opensrf><domain>one</domain><domain>two</domain><username>u</username><passwd>p</passwd></opensrf></config>";
    expect(readCoreConfigFromString(xml).opensrf.domain).toBe("one");
  });

  test("router <host> addition, <name>, defaults", () => {
    const cfg = readCoreConfigFromString(
      core(
        "",
        `<routers><router><name>main</name><host>10.0.0.5</host><transport><server>x</server><username>router</username><password>pw</password></transport></router>
         <router><transport><server>y</server><username>router</username><password>pw</password><host>10.0.0.6</host></transport></router></routers>`,
      ),
    );
    expect(cfg.routers[0]).toMatchObject({
      name: "main",
      host: "10.0.0.5",
      loglevel: 3,
      logfile: "stderr",
      trustedServers: [],
      trustedClients: [],
      transport: { port: 5222, resource: "router", connectTimeout: 10, maxReconnectAttempts: 5 },
    });
    expect(cfg.routers[1]?.host).toBe("10.0.0.6");
  });

  test("log_protect match strings", () => {
    const cfg = readCoreConfigFromString(
      core(
        "",
        "<shared><log_protect><match_string>open-ils.auth</match_string><match_string> open-ils.x.y </match_string></log_protect></shared>",
      ),
    );
    expect(cfg.logProtect).toEqual(["open-ils.auth", "open-ils.x.y"]);
  });
});

describe("errors: one line naming file and path", () => {
  test.each([
    ["domain", "<username>u</username><passwd>p</passwd>", "/config/opensrf/domain", "the XMPP domain"],
    ["username", "<domain>d</domain><passwd>p</passwd>", "/config/opensrf/username", "XMPP account name"],
    ["passwd", "<domain>d</domain><username>u</username>", "/config/opensrf/passwd", "password"],
  ])("missing %s", (_name, inner, path, expected) => {
    const err = configError(() =>
      readCoreConfigFromString(`<config><opensrf>${inner}</opensrf></config>`, "opensrf_core.xml"),
    );
    expect(err.file).toBe("opensrf_core.xml");
    expect(err.path).toBe(path);
    expect(err.message).toStartWith(`opensrf_core.xml: ${path}: missing required element (expected `);
    expect(err.message).toContain(expected);
  });

  test("the exact message for a missing domain", () => {
    const err = configError(() =>
      readCoreConfigFromString(
        "<config><opensrf><username>u</username><passwd>p</passwd></opensrf></config>",
        "opensrf_core.xml",
      ),
    );
    expect(err.message).toBe(
      "opensrf_core.xml: /config/opensrf/domain: missing required element (expected the XMPP domain, e.g. <domain>localhost</domain>)",
    );
  });

  test("an empty required element counts as missing", () => {
    const err = configError(() =>
      readCoreConfigFromString(
        "<config><opensrf><domain>d</domain><username>u</username><passwd>  </passwd></opensrf></config>",
      ),
    );
    expect(err.path).toBe("/config/opensrf/passwd");
    expect(err.message).toContain("empty");
  });

  test("passwords never appear in error messages", () => {
    const err = configError(() => readCoreConfigFromString(core("<port>x</port>").replace(">p<", ">hunter22<")));
    expect(err.message).not.toContain("hunter22");
  });

  test("no <opensrf> section", () => {
    expect(configError(() => readCoreConfigFromString("<config/>")).path).toBe("/config/opensrf");
  });

  test.each([
    ["<port>0</port>", "/config/opensrf/port"],
    ["<port>70000</port>", "/config/opensrf/port"],
    ["<port>52x</port>", "/config/opensrf/port"],
    ["<loglevel>9</loglevel>", "/config/opensrf/loglevel"],
    ["<loglevel>-1</loglevel>", "/config/opensrf/loglevel"],
    ["<msg_size_warn>big</msg_size_warn>", "/config/opensrf/msg_size_warn"],
    ["<max_stanza_size>10</max_stanza_size>", "/config/opensrf/max_stanza_size"],
    ["<logfile>a</logfile><logfile>b</logfile>", "/config/opensrf/logfile"],
    ["<username>v</username>", "/config/opensrf/username"],
    ["<port><n>1</n></port>", "/config/opensrf/port"],
    ["<routers><router/></routers>", "/config/opensrf/routers/router"],
    ["<routers><router><name>r</name></router></routers>", "/config/opensrf/routers/router/domain"],
  ])("bad value %s", (extra, path) => {
    const err = configError(() => readCoreConfigFromString(core(extra), "opensrf_core.xml"));
    expect(err.path).toBe(path);
    expect(err.message).toStartWith(`opensrf_core.xml: ${path}: `);
  });

  test("router errors carry the index of the router", () => {
    const err = configError(() =>
      readCoreConfigFromString(
        core(
          "",
          "<routers><router><transport><server>a</server><username>r</username><password>p</password></transport></router><router><transport><server>b</server><password>p</password></transport></router></routers>",
        ),
      ),
    );
    expect(err.path).toBe("/config/routers/router[2]/transport/username");
    expect(configError(() => readCoreConfigFromString(core("", "<routers><router/></routers>"))).path).toBe(
      "/config/routers/router/transport",
    );
  });

  test("missing file and malformed XML", () => {
    const missing = join(FIXTURES, "missing_core.xml");
    expect(configError(() => readCoreConfig(missing)).message).toStartWith(`cannot read ${missing}: ENOENT`);
    const bad = configError(() => readCoreConfigFromString("<config>\n<opensrf>\n</config>", "opensrf_core.xml"));
    expect(bad.message).toStartWith("opensrf_core.xml:3:1: malformed XML");
  });
});
