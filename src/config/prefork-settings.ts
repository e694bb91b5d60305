/**
 * The prefork server's settings of one service, read from a host's settings tree with C
 * 3.3's keys and defaults and checked, so a bad value is one error naming its path.
 */
import { DEFAULT_PID_DIR, pidDirOf } from "./defaults.ts";
import { ConfigError } from "./errors.ts";
import { isTree, lookup, settingText } from "./settings.ts";
import type { PreforkSettings, SettingsTree } from "./types.ts";

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
  spareGrace: 10,
  requestTimeout: 0,
  maxMemoryMb: 0,
  maxRequestsJitter: 0.1,
  shutdownTimeout: 30,
  maxChunkSize: 51200,
  maxBundleSize: 25600,
  crashBackoffMax: 60,
  registerInterval: 30,
  routerProbeInterval: 1,
  statusPort: 0,
  statusSocket: "",
  pidDir: DEFAULT_PID_DIR,
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
    spareGrace: read(`${unix}/spare_grace`, seconds("spare_grace"), d.spareGrace),
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
    routerProbeInterval: read(`${unix}/router_probe_interval`, seconds("router_probe_interval"), d.routerProbeInterval),
    statusPort: read(`${unix}/status_port`, count(0, "status_port"), d.statusPort),
    statusSocket: settingText(lookup(hostTree, `${unix}/status_socket`)) ?? d.statusSocket,
    pidDir: pidDirOf(hostTree),
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

function describeRule(rule: NumberRule): string {
  const example = rule.example || (rule.below !== undefined ? 0.1 : 5);
  let what: string;
  if (rule.below !== undefined) what = `a fraction from ${rule.min} up to (not including) ${rule.below}`;
  else if (rule.integer) what = `a whole number of at least ${rule.min}`;
  else what = rule.positive ? "a number of seconds above 0" : "a number of seconds (0 or more)";
  return `${what}, e.g. <${rule.tag}>${example}</${rule.tag}>`;
}
