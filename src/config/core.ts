/**
 * opensrf_core.xml (and srfsh.xml-style client files) to typed config.
 *
 * Resolution follows OpenSRF's C reader where it matters: the client section is found
 * like C's `//opensrf` context, the first `<domain>` wins, comments are invisible (the
 * sample's commented-out second `<logfile>` does not count), and an empty element counts
 * as missing. Where C silently misreads (a scalar element given twice) we refuse instead.
 */
import type { BusKind } from "../bus/types.ts";
import { ConfigError } from "./errors.ts";
import type { ClientConfig, CoreConfig, LogConfig, RouterConfig, RouterTarget, RouterTransport } from "./types.ts";
import { childNamed, childrenNamed, findElement, parseXml, readXmlFile, type XmlElement } from "./xml.ts";

/** XMPP client port used when `<port>` is absent. */
export const DEFAULT_PORT = 5222;
/** Redis port used when `<port>` is absent on the Redis bus. */
export const DEFAULT_REDIS_PORT = 6379;
/** Level used when `<loglevel>` is absent (info). */
export const DEFAULT_LOGLEVEL = 3;
/** Bytes above which an outgoing message is logged with a warning (OpenSRF's sample value). */
export const DEFAULT_MSG_SIZE_WARN = 1_800_000;
/** Largest stanza we send or accept when `<max_stanza_size>` is absent (10 MiB). */
export const DEFAULT_MAX_STANZA_SIZE = 10_485_760;
/** Router account name when neither `<router_name>` nor a router's `<name>` is given. */
export const DEFAULT_ROUTER_NAME = "router";
/** Log destination when `<logfile>` is absent (C refuses to start instead). */
export const DEFAULT_LOGFILE = "stderr";

/**
 * Reads opensrf_core.xml.
 * @param file Path of the file.
 * @throws ConfigError (one line naming file and element path) for an unreadable file,
 *   malformed XML, a missing `<domain>`, `<username>` or `<passwd>`, or a bad value.
 */
export function readCoreConfig(file: string): CoreConfig {
  return coreFromDocument(readXmlFile(file), file);
}

/**
 * Same as {@link readCoreConfig} for XML already in memory.
 * @param file Name used in error messages.
 */
export function readCoreConfigFromString(xml: string, file = "opensrf_core.xml"): CoreConfig {
  return coreFromDocument(parseXml(xml, file), file);
}

/**
 * Reads a client section laid out like `/config/opensrf`: srfsh.xml (`/srfsh`), the
 * gateway section (`/config/gateway`), or opensrf_core.xml's own `/config/opensrf`.
 * @param file Path of the file.
 * @param root Where the section is: an absolute element path (`/config/gateway`) or a
 *   bare element name found anywhere (`gateway`, as C's config context). Default: the
 *   document root, or its `<opensrf>` child when the root is `<config>`.
 */
export function readClientConfig(file: string, root?: string): ClientConfig {
  return clientFromDocument(readXmlFile(file), file, root);
}

/** Same as {@link readClientConfig} for XML already in memory. */
export function readClientConfigFromString(xml: string, file = "srfsh.xml", root?: string): ClientConfig {
  return clientFromDocument(parseXml(xml, file), file, root);
}

function clientFromDocument(doc: XmlElement, file: string, root?: string): ClientConfig {
  const spec = root ?? (doc.name === "config" ? "opensrf" : `/${doc.name}`);
  const section = findElement(doc, spec);
  if (!section) {
    throw new ConfigError({
      file,
      path: spec.startsWith("/") ? spec : `//${spec}`,
      problem: "missing client section",
      expected: "an element with <domain>, <username> and <passwd> children",
      fix: "check the section name passed to the reader",
    });
  }
  return readClientSection(new Section(file, section));
}

function coreFromDocument(doc: XmlElement, file: string): CoreConfig {
  // C looks the context up anywhere (`//opensrf`); /config/opensrf is the normal place.
  const opensrfEl = findElement(doc, "/config/opensrf") ?? findElement(doc, "opensrf");
  if (!opensrfEl) {
    throw new ConfigError({
      file,
      path: "/config/opensrf",
      problem: "missing required element",
      expected: "the <opensrf> client section with <domain>, <username> and <passwd>",
    });
  }
  const opensrf = readClientSection(new Section(file, opensrfEl));

  const routers: RouterConfig[] = [];
  // Only the top-level /config/routers; /config/opensrf/routers lists registration targets.
  const routersEls = doc.name === "config" ? childrenNamed(doc, "routers") : [];
  for (const routersEl of routersEls) {
    for (const routerEl of childrenNamed(routersEl, "router")) {
      routers.push(readRouter(new Section(file, routerEl)));
    }
  }

  const logProtect: string[] = [];
  const sharedEl = findElement(doc, "/config/shared") ?? findElement(doc, "shared");
  if (sharedEl) {
    for (const protectEl of childrenNamed(sharedEl, "log_protect")) {
      logProtect.push(...new Section(file, protectEl).list("match_string"));
    }
  }

  return { file, opensrf, routers, logProtect };
}

function readLogSettings(s: Section): LogConfig {
  const log: LogConfig = {
    logfile: s.optString("logfile") ?? DEFAULT_LOGFILE,
    loglevel: s.optInt("loglevel", DEFAULT_LOGLEVEL, {
      min: 0,
      max: 5,
      expected: "0 (none) to 5 (internal), e.g. <loglevel>3</loglevel>",
    }),
  };
  const syslog = s.optString("syslog");
  if (syslog !== undefined) log.syslog = syslog;
  const actlog = s.optString("actlog");
  if (actlog !== undefined) log.actlog = actlog;
  const logtag = s.optString("logtag");
  if (logtag !== undefined) log.logtag = logtag;
  if (s.has("loglength")) {
    log.loglength = s.optInt("loglength", 0, {
      min: 64,
      expected: "a message length in bytes, e.g. <loglength>1536</loglength>",
    });
  }
  return log;
}

/** `<bus>` of a client section (our addition): which bus the file's settings are for. */
function readBus(s: Section): BusKind | undefined {
  const bus = s.optString("bus");
  if (bus === undefined) return undefined;
  const lower = bus.toLowerCase();
  if (lower === "xmpp" || lower === "redis") return lower;
  throw new ConfigError({
    file: s.file,
    path: `${s.el.path}/bus`,
    problem: `invalid value "${bus}"`,
    expected: "xmpp (OpenSRF 3.x) or redis (OpenSRF main), e.g. <bus>redis</bus>",
  });
}

function readClientSection(s: Section): ClientConfig {
  const bus = readBus(s);
  const domain = s.firstString("domain", "the XMPP domain, e.g. <domain>localhost</domain>");
  const username = s.reqString("username", "the XMPP account name, e.g. <username>opensrf</username>");
  const passwd = s.reqString("passwd", "the XMPP account password, e.g. <passwd>secret</passwd>");
  const routerName = s.optString("router_name") ?? DEFAULT_ROUTER_NAME;

  const config: ClientConfig = {
    ...readLogSettings(s),
    domain,
    username,
    passwd,
    ...(bus ? { bus } : {}),
    port: s.optInt("port", bus === "redis" ? DEFAULT_REDIS_PORT : DEFAULT_PORT, {
      min: 1,
      max: 65535,
      expected: "a TCP port, e.g. <port>5222</port> (XMPP) or <port>6379</port> (Redis)",
    }),
    portFromFile: s.has("port"),
    server: s.optString("server") ?? domain,
    routerName,
    routers: readRouterTargets(s, routerName, domain),
    msgSizeWarn: s.optInt("msg_size_warn", DEFAULT_MSG_SIZE_WARN, {
      min: 1,
      expected: "a size in bytes, e.g. <msg_size_warn>1800000</msg_size_warn>",
    }),
    maxStanzaSize: s.optInt("max_stanza_size", DEFAULT_MAX_STANZA_SIZE, {
      min: 1024,
      expected: "a size in bytes of at least 1024, e.g. <max_stanza_size>10485760</max_stanza_size>",
    }),
  };
  const settingsConfig = s.optString("settings_config");
  if (settingsConfig !== undefined) config.settingsConfig = settingsConfig;
  const client = s.optString("client");
  if (client !== undefined) config.client = client.toLowerCase() === "true"; // C: strcasecmp
  return config;
}

function readRouterTargets(s: Section, routerName: string, domain: string): RouterTarget[] {
  const routersEl = s.single("routers");
  const routerEls = routersEl ? childrenNamed(routersEl, "router") : [];
  if (routerEls.length === 0) return [{ name: routerName, domain }];

  return routerEls.map((el): RouterTarget => {
    const r = new Section(s.file, el);
    if (el.children.length === 0) {
      // Simple config: the element's text is the router's domain.
      const text = el.text.trim();
      if (!text) {
        throw new ConfigError({
          file: s.file,
          path: el.path,
          problem: "empty router entry",
          expected: "a router domain (<router>private.localhost</router>) or <name> and <domain> children",
        });
      }
      return { name: routerName, domain: text };
    }
    const target: RouterTarget = {
      // C would address "(null)@domain"; the simple-config name is the sensible fallback.
      name: r.optString("name") ?? routerName,
      domain: r.reqString("domain", "the router's XMPP domain, e.g. <domain>private.localhost</domain>"),
    };
    // C filters only when <services> holds at least one <service>; an empty one means all.
    const servicesEl = r.single("services");
    if (servicesEl) {
      const services = new Section(s.file, servicesEl).list("service");
      if (services.length > 0) target.services = services;
    }
    return target;
  });
}

/**
 * Default `stall_timeout` (Redis router): seconds a message may sit unread in one listener's
 * queue before the router takes it back for another instance. Short enough that a caller
 * (srfsh waits 120 s, Perl 60 s) still gets its answer; long enough that a listener whose
 * drones are all busy for a moment is not judged gone (and being wrong costs little: a probe
 * request brings it back).
 */
export const DEFAULT_STALL_TIMEOUT = 5;

function readRouter(s: Section): RouterConfig {
  const transportEl = s.single("transport");
  if (!transportEl) {
    throw new ConfigError({
      file: s.file,
      path: `${s.el.path}/transport`,
      problem: "missing required element",
      expected: "<transport> with <server>, <username> and <password>",
    });
  }
  const t = new Section(s.file, transportEl);
  const transport: RouterTransport = {
    server: t.reqString("server", "the router's XMPP domain, e.g. <server>private.localhost</server>"),
    port: t.optInt("port", DEFAULT_PORT, { min: 1, max: 65535, expected: "a TCP port, e.g. <port>5222</port>" }),
    portFromFile: t.has("port"),
    username: t.reqString("username", "the router's XMPP account, e.g. <username>router</username>"),
    password: t.reqString("password", "the router's XMPP password, e.g. <password>secret</password>"),
    resource: t.optString("resource") ?? "router",
    connectTimeout: t.optInt("connect_timeout", 10, {
      min: 1,
      expected: "seconds, e.g. <connect_timeout>10</connect_timeout>",
    }),
    maxReconnectAttempts: t.optInt("max_reconnect_attempts", 5, {
      min: 0,
      expected: "a count, e.g. <max_reconnect_attempts>5</max_reconnect_attempts>",
    }),
  };

  const trustedServers: string[] = [];
  const trustedClients: string[] = [];
  for (const trustedEl of s.all("trusted_domains")) {
    const trusted = new Section(s.file, trustedEl);
    trustedServers.push(...trusted.list("server"));
    trustedClients.push(...trusted.list("client"));
  }

  const router: RouterConfig = {
    ...readLogSettings(s),
    trustedServers,
    trustedClients,
    transport,
    // Our addition; accepted beside <transport>'s children too, where it reads naturally.
    host: s.optString("host") ?? t.optString("host") ?? transport.server,
    stallTimeout: s.optInt("stall_timeout", DEFAULT_STALL_TIMEOUT, {
      min: 1,
      expected: "seconds a message may wait unread in a service queue, e.g. <stall_timeout>5</stall_timeout>",
    }),
  };
  const name = s.optString("name");
  if (name !== undefined) router.name = name;
  return router;
}

interface IntRule {
  min?: number;
  max?: number;
  expected: string;
}

/** Typed access to one element's children, with errors naming the element path. */
class Section {
  constructor(
    readonly file: string,
    readonly el: XmlElement,
  ) {}

  has(name: string): boolean {
    return childNamed(this.el, name) !== undefined;
  }

  all(name: string): XmlElement[] {
    return childrenNamed(this.el, name);
  }

  /** The only child named `name`; C reads a repeated scalar as missing, we refuse. */
  single(name: string): XmlElement | undefined {
    const found = childrenNamed(this.el, name);
    if (found.length > 1) {
      throw new ConfigError({
        file: this.file,
        path: `${this.el.path}/${name}`,
        problem: `element appears ${found.length} times`,
        expected: `a single <${name}>`,
        fix: "remove or comment out the extra ones",
      });
    }
    return found[0];
  }

  optString(name: string): string | undefined {
    const el = this.single(name);
    return el ? this.scalar(el) : undefined;
  }

  reqString(name: string, expected: string): string {
    const el = this.single(name);
    const value = el ? this.scalar(el) : undefined;
    if (value === undefined) throw this.missing(name, expected, el);
    return value;
  }

  /** First of possibly several, as C does for `<domain>`. */
  firstString(name: string, expected: string): string {
    const el = childNamed(this.el, name);
    const value = el ? this.scalar(el) : undefined;
    if (value === undefined) throw this.missing(name, expected, el);
    return value;
  }

  optInt(name: string, fallback: number, rule: IntRule): number {
    const el = this.single(name);
    const text = el ? this.scalar(el) : undefined;
    if (text === undefined || el === undefined) return fallback;
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    const inRange =
      Number.isSafeInteger(value) &&
      (rule.min === undefined || value >= rule.min) &&
      (rule.max === undefined || value <= rule.max);
    if (!inRange) {
      const range =
        rule.min !== undefined && rule.max !== undefined
          ? ` (${rule.min}-${rule.max})`
          : rule.min !== undefined
            ? ` (at least ${rule.min})`
            : "";
      throw new ConfigError({
        file: this.file,
        path: el.path,
        problem: `invalid value "${text}"${range}`,
        expected: rule.expected,
      });
    }
    return value;
  }

  /** Trimmed, non-empty texts of every child named `name`. */
  list(name: string): string[] {
    const out: string[] = [];
    for (const el of childrenNamed(this.el, name)) {
      const value = this.scalar(el);
      if (value !== undefined) out.push(value);
    }
    return out;
  }

  /** Text of a leaf element; empty counts as missing, like C's NULL for `<x/>`. */
  private scalar(el: XmlElement): string | undefined {
    if (el.children.length > 0) {
      throw new ConfigError({
        file: this.file,
        path: el.path,
        problem: "found child elements where a value was expected",
        expected: `plain text, e.g. <${el.name}>value</${el.name}>`,
      });
    }
    const text = el.text.trim();
    return text === "" ? undefined : text;
  }

  private missing(name: string, expected: string, present?: XmlElement): ConfigError {
    return new ConfigError({
      file: this.file,
      path: present?.path ?? `${this.el.path}/${name}`,
      problem: present ? "required element is empty" : "missing required element",
      expected,
    });
  }
}
