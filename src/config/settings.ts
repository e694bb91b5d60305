/**
 * opensrf.xml, converted and merged the way OpenSRF's settings server
 * (`opensrf.settings`, Perl OpenSRF::Utils::SettingsParser) does, plus typed prefork
 * settings read from the result.
 */
import { ConfigError } from "./errors.ts";
import type { PreforkSettings, SettingsTree, SettingsValue } from "./types.ts";
import { parseXml, readXmlFile, type XmlElement } from "./xml.ts";

/** Options for converting opensrf.xml. */
export interface SettingsReadOptions {
  /**
   * Turn texts of 1–10 digits into numbers, as the Perl server does before sending JSON
   * (sample: `"max_children":15`). Default false: every text stays a string and readers
   * such as {@link readPreforkSettings} convert (they accept both forms).
   */
  perlNumbers?: boolean;
}

/**
 * Reads opensrf.xml and converts the whole document (root element included) to a tree:
 * `{default: {...}, hosts: {...}, version: "0.0.3"}` for the sample.
 * @throws ConfigError for an unreadable or malformed file, or a root other than `<opensrf>`.
 */
export function readSettingsFile(file: string, options: SettingsReadOptions = {}): SettingsTree {
  return settingsFromDocument(readXmlFile(file), file, options);
}

/** Same as {@link readSettingsFile} for XML already in memory. */
export function readSettingsFromString(
  xml: string,
  file = "opensrf.xml",
  options: SettingsReadOptions = {},
): SettingsTree {
  return settingsFromDocument(parseXml(xml, file), file, options);
}

function settingsFromDocument(root: XmlElement, file: string, options: SettingsReadOptions): SettingsTree {
  // The settings server looks up /opensrf/default and /opensrf/hosts/<host>; any other
  // root yields nothing, which is never what the operator meant.
  if (root.name !== "opensrf") {
    throw new ConfigError({
      file,
      path: root.path,
      problem: `root element is <${root.name}>`,
      expected: "<opensrf> with <default> and <hosts> children",
      fix: "pass opensrf.xml, not opensrf_core.xml",
    });
  }
  const tree = xmlToSettings(root, options);
  return isTree(tree) ? tree : {};
}

/**
 * Converts one element the way Perl's `XML2perl` does:
 * - an element whose only content is text becomes that text (its attributes are dropped);
 * - otherwise an object: attributes first, then one key per child element, a repeated
 *   name becoming an array in document order (an attribute and a child of the same name
 *   also make an array);
 * - an empty element becomes `{}` (so `<activeapps/>` is an empty object, not "").
 * Differences, deliberate: comments are ignored everywhere (Perl turns `<x>5<!-- c --></x>`
 * into `{}`), and stray text beside child elements is dropped (Perl adds `"text": {}`).
 */
export function xmlToSettings(el: XmlElement, options: SettingsReadOptions = {}): SettingsValue {
  const scalar = (text: string): string | number =>
    options.perlNumbers && /^\d{1,10}\n?$/.test(text) ? Number(text) : text;

  if (el.children.length === 0 && el.text !== "") return scalar(el.text);

  const out: SettingsTree = {};
  const add = (key: string, value: SettingsValue): void => {
    if (!Object.hasOwn(out, key)) setKey(out, key, value);
    else {
      const prev = out[key] as SettingsValue;
      if (Array.isArray(prev)) prev.push(value);
      else setKey(out, key, [prev, value]);
    }
  };
  for (const [name, value] of Object.entries(el.attributes)) add(name, scalar(value));
  for (const child of el.children) add(child.name, xmlToSettings(child, options));
  return out;
}

/**
 * The host config the settings server returns for `opensrf.settings.host_config.get`:
 * `/opensrf/default` overlaid by `/opensrf/hosts/<host>`.
 *
 * Matches Perl's `get_server_config`/`merge_perl`: objects merge key by key, recursively
 * where both sides are objects (or both arrays); arrays merge **index by index**, so a
 * host list shorter than the default's keeps the default's tail; anything else is
 * replaced by the host's value. A `host` containing commas names several hosts (Perl's
 * workaround for odd FQDNs), overlaid in document order. An unknown host gets the default
 * config alone, exactly as the real server answers (no error): check
 * {@link settingsHostNames} to warn about it.
 * Unlike Perl (document order), `<default>` is always applied first.
 * @param tree Result of {@link readSettingsFile}. Not modified.
 */
export function hostConfig(tree: SettingsTree, host: string): SettingsTree {
  const wanted = new Set(host.split(","));
  const layers: SettingsValue[] = [...asList(own(tree, "default"))];
  for (const hostsEl of asList(own(tree, "hosts"))) {
    if (!isTree(hostsEl)) continue;
    for (const name of Object.keys(hostsEl)) {
      if (wanted.has(name)) layers.push(...asList(hostsEl[name] as SettingsValue));
    }
  }
  if (layers.length === 0) return {};
  let merged = structuredClone(layers[0] as SettingsValue);
  for (const layer of layers.slice(1)) merged = mergePerl(merged, structuredClone(layer));
  return isTree(merged) ? merged : {};
}

/** Host names defined under `/opensrf/hosts` of a settings tree. */
export function settingsHostNames(tree: SettingsTree): string[] {
  const names: string[] = [];
  for (const hostsEl of asList(own(tree, "hosts"))) {
    if (isTree(hostsEl)) names.push(...Object.keys(hostsEl));
  }
  return names;
}

/**
 * Looks a slash path up in a tree, e.g. `/apps/opensrf.math/unix_config/min_children`.
 * Numeric segments index arrays. Returns undefined when any step is missing.
 */
export function lookup(tree: SettingsTree, path: string): SettingsValue | undefined {
  let cur: SettingsValue | undefined = tree;
  for (const step of path.split("/")) {
    if (step === "") continue;
    if (isTree(cur)) cur = own(cur, step);
    else if (Array.isArray(cur) && /^\d+$/.test(step)) cur = cur[Number(step)];
    else return undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Highest max_children accepted, as C's ABS_MAX_CHILDREN. */
export const ABS_MAX_CHILDREN = 256;

/** Defaults used when a key is absent (C 3.3 values for OpenSRF's own keys). */
export const PREFORK_DEFAULTS: Readonly<Omit<PreforkSettings, "warnings" | "maxSessionRequests">> = {
  maxRequests: 1000,
  minChildren: 3,
  maxChildren: 10,
  maxBacklogQueue: 1000,
  keepalive: 5,
  minSpareChildren: 0,
  maxSpareChildren: 0,
  requestTimeout: 0,
  maxMemoryMb: 0,
  maxRequestsJitter: 0.1,
  shutdownTimeout: 30,
  maxChunkSize: 51200,
  maxBundleSize: 25600,
  crashBackoffMax: 60,
  registerInterval: 30,
  statusPort: 0,
  statusSocket: "",
};

/**
 * Reads the prefork settings of `service` from a host config, with C 3.3's keys and
 * defaults: `/apps/S/unix_config/{max_requests,min_children,max_children,max_backlog_queue}`
 * and `/apps/S/keepalive`. The top-level `/apps/S/max_requests` is *not* a fallback for
 * the drone limit: in Perl it caps requests per stateful session, and C never reads it;
 * it is returned as `maxSessionRequests`. Values may be strings (our conversion) or
 * numbers (JSON from a Perl settings server).
 * @param hostTree Result of {@link hostConfig} (or the settings server's answer).
 * @param service Service name, e.g. "opensrf.math".
 * @param source Named in errors, e.g. the opensrf.xml path or "settings server".
 * @throws ConfigError naming the settings path for a non-numeric or out-of-range value,
 *   or min_children above max_children.
 */
export function readPreforkSettings(hostTree: SettingsTree, service: string, source = "opensrf.xml"): PreforkSettings {
  const warnings: string[] = [];
  const app = `/apps/${service}`;
  const unix = `${app}/unix_config`;
  if (lookup(hostTree, app) === undefined) {
    warnings.push(`${source}: ${app}: service not configured for this host; using defaults`);
  }

  const read = (path: string, rule: NumberRule, fallback: number, warnIfMissing?: string): number => {
    const value = readNumber(hostTree, path, { example: fallback, ...rule }, source);
    if (value !== undefined) return value;
    // C logs these at startup; keep the same hint for OpenSRF's own keys.
    if (warnIfMissing) warnings.push(`${source}: ${path}: ${warnIfMissing} not defined, assuming ${fallback}`);
    return fallback;
  };
  const d = PREFORK_DEFAULTS;
  const count = (min: number, tag: string): NumberRule => ({ integer: true, min, tag });
  const seconds = (tag: string, positive = false): NumberRule => ({ integer: false, min: 0, positive, tag });

  const settings: PreforkSettings = {
    maxRequests: read(`${unix}/max_requests`, count(1, "max_requests"), d.maxRequests, "max requests"),
    minChildren: read(`${unix}/min_children`, count(0, "min_children"), d.minChildren, "min children"),
    maxChildren: read(`${unix}/max_children`, count(1, "max_children"), d.maxChildren, "max children"),
    maxBacklogQueue: read(
      `${unix}/max_backlog_queue`,
      count(0, "max_backlog_queue"),
      d.maxBacklogQueue,
      "max backlog queue size",
    ),
    keepalive: read(`${app}/keepalive`, seconds("keepalive", true), d.keepalive, "keepalive"),
    minSpareChildren: read(`${unix}/min_spare_children`, count(0, "min_spare_children"), d.minSpareChildren),
    maxSpareChildren: read(`${unix}/max_spare_children`, count(0, "max_spare_children"), d.maxSpareChildren),
    requestTimeout: read(`${unix}/request_timeout`, seconds("request_timeout"), d.requestTimeout),
    maxMemoryMb: read(`${unix}/max_memory_mb`, count(0, "max_memory_mb"), d.maxMemoryMb),
    maxRequestsJitter: read(
      `${unix}/max_requests_jitter`,
      { integer: false, min: 0, below: 1, tag: "max_requests_jitter" },
      d.maxRequestsJitter,
    ),
    shutdownTimeout: read(`${unix}/shutdown_timeout`, seconds("shutdown_timeout"), d.shutdownTimeout),
    maxChunkSize: read(`${unix}/max_chunk_size`, count(0, "max_chunk_size"), d.maxChunkSize),
    maxBundleSize: read(`${unix}/max_bundle_size`, count(0, "max_bundle_size"), d.maxBundleSize),
    crashBackoffMax: read(`${unix}/crash_backoff_max`, seconds("crash_backoff_max"), d.crashBackoffMax),
    registerInterval: read(`${unix}/register_interval`, seconds("register_interval"), d.registerInterval),
    statusPort: read(`${unix}/status_port`, count(0, "status_port"), d.statusPort),
    statusSocket: readText(hostTree, `${unix}/status_socket`) ?? d.statusSocket,
    warnings,
  };
  if (settings.statusPort > 65535) {
    throw new ConfigError({
      file: source,
      path: `${unix}/status_port`,
      problem: `invalid value "${settings.statusPort}"`,
      expected: "a TCP port from 1 to 65535 (0 = off), e.g. <status_port>9100</status_port>",
    });
  }
  const sessionMax = readNumber(hostTree, `${app}/max_requests`, count(1, "max_requests"), source);
  if (sessionMax !== undefined) settings.maxSessionRequests = sessionMax;

  if (settings.maxChildren > ABS_MAX_CHILDREN) {
    // C refuses to start; clamping keeps the service up and the warning says why.
    warnings.push(
      `${source}: ${unix}/max_children: ${settings.maxChildren} is above the hard limit ` +
        `${ABS_MAX_CHILDREN}; using ${ABS_MAX_CHILDREN}`,
    );
    settings.maxChildren = ABS_MAX_CHILDREN;
  }
  if (settings.minChildren > settings.maxChildren) {
    throw new ConfigError({
      file: source,
      path: `${unix}/min_children`,
      problem: `min_children (${settings.minChildren}) is greater than max_children (${settings.maxChildren})`,
      expected: "min_children <= max_children",
      fix: "lower min_children or raise max_children",
    });
  }
  if (settings.maxSpareChildren > 0 && settings.maxSpareChildren <= settings.minSpareChildren) {
    // Perl's OpenSRF::Server makes the same correction.
    const fixed = settings.minSpareChildren + 1;
    warnings.push(
      `${source}: ${unix}/max_spare_children: ${settings.maxSpareChildren} is not above ` +
        `min_spare_children (${settings.minSpareChildren}); using ${fixed}`,
    );
    settings.maxSpareChildren = fixed;
  }
  return settings;
}

interface NumberRule {
  integer: boolean;
  min: number;
  /** Exclusive upper bound. */
  below?: number;
  /** Zero not allowed. */
  positive?: boolean;
  /** Element name for the example in error messages. */
  tag: string;
  /** Value shown in the example (the default, when there is one). */
  example?: number;
}

function readNumber(tree: SettingsTree, path: string, rule: NumberRule, source: string): number | undefined {
  const raw = lookup(tree, path);
  // An empty element converts to {} (Perl): treat it as absent.
  if (raw === undefined || (isTree(raw) && Object.keys(raw).length === 0)) return undefined;
  let value = NaN;
  if (typeof raw === "number") value = raw;
  else if (typeof raw === "string") {
    const text = raw.trim();
    if (text === "") return undefined;
    if (rule.integer ? /^\d+$/.test(text) : /^\d+(\.\d+)?$/.test(text)) value = Number(text);
  }
  const ok =
    Number.isFinite(value) &&
    (!rule.integer || Number.isSafeInteger(value)) &&
    value >= rule.min &&
    (!rule.positive || value > 0) &&
    (rule.below === undefined || value < rule.below);
  if (!ok) {
    const shown = typeof raw === "string" ? `"${raw.trim()}"` : JSON.stringify(raw);
    throw new ConfigError({
      file: source,
      path,
      problem: `invalid value ${shown}`,
      expected: describeRule(rule),
    });
  }
  return value;
}

/** A text setting, trimmed; undefined when absent or empty. */
function readText(tree: SettingsTree, path: string): string | undefined {
  const raw = lookup(tree, path);
  if (typeof raw !== "string" && typeof raw !== "number") return undefined;
  const text = String(raw).trim();
  return text === "" ? undefined : text;
}

function describeRule(rule: NumberRule): string {
  const example = rule.example || (rule.below !== undefined ? 0.1 : 5);
  let what: string;
  if (rule.below !== undefined) what = `a fraction from ${rule.min} up to (not including) ${rule.below}`;
  else if (rule.integer) what = `a whole number of at least ${rule.min}`;
  else what = rule.positive ? "a number of seconds above 0" : "a number of seconds (0 or more)";
  return `${what}, e.g. <${rule.tag}>${example}</${rule.tag}>`;
}

function mergePerl(base: SettingsValue, overlay: SettingsValue): SettingsValue {
  if (isTree(base) && isTree(overlay)) {
    for (const key of Object.keys(overlay)) {
      const b = own(base, key);
      const o = overlay[key] as SettingsValue;
      if (b !== undefined && sameContainer(b, o)) mergePerl(b, o);
      else setKey(base, key, o);
    }
    return base;
  }
  if (Array.isArray(base) && Array.isArray(overlay)) {
    overlay.forEach((o, i) => {
      const b = base[i];
      if (b !== undefined && sameContainer(b, o)) mergePerl(b, o);
      else base[i] = o;
    });
    return base;
  }
  return overlay;
}

function sameContainer(a: SettingsValue, b: SettingsValue): boolean {
  return (isTree(a) && isTree(b)) || (Array.isArray(a) && Array.isArray(b));
}

function isTree(value: SettingsValue | undefined): value is SettingsTree {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asList(value: SettingsValue | undefined): SettingsValue[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Own keys only: a setting named "constructor" must not find Object's. */
function own(tree: SettingsTree, key: string): SettingsValue | undefined {
  return Object.hasOwn(tree, key) ? tree[key] : undefined;
}

function setKey(tree: SettingsTree, key: string, value: SettingsValue): void {
  // "__proto__" would replace the prototype on plain assignment.
  if (key === "__proto__") {
    Object.defineProperty(tree, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    tree[key] = value;
  }
}

/** osrf_control's default pid dir (`@PID_DIR@/run/opensrf` of an OpenSRF install). */
export const DEFAULT_PID_DIR = "/openils/var/run/opensrf";

/** A scalar setting as trimmed text; undefined when absent, empty or not a scalar. */
export function settingText(v: SettingsValue | undefined): string | undefined {
  if (typeof v === "number") return String(v);
  if (typeof v !== "string") return undefined;
  const t = v.trim();
  return t === "" ? undefined : t;
}

/** Where pid files and status sockets live: `--pid-dir`, else `dirs/pid` of the host config, else osrf_control's default. */
export function pidDirOf(hostTree: SettingsTree | undefined, override?: string): string {
  return override ?? (hostTree && settingText(lookup(hostTree, "/dirs/pid"))) ?? DEFAULT_PID_DIR;
}
