/**
 * Which services a host runs, read from opensrf.xml the way osrf_control does:
 * `/opensrf/hosts/<host>/activeapps/appname` (merged over `/opensrf/default`), and for
 * each name its `/apps/<name>/language` and `implementation`.
 *
 * Our services say `<language>typescript</language>` (or javascript) and name their module
 * in `<implementation>`: an absolute path, a path relative to opensrf.xml's directory, or
 * `builtin:opensrf.settings` for the built-in settings server. Other languages are left to
 * osrf_control and reported as skipped.
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { ConfigError } from "../config/errors.ts";
import { hostConfig, lookup, settingsHostNames } from "../config/settings.ts";
import type { SettingsTree, SettingsValue } from "../config/types.ts";

/** `<implementation>` of the built-in settings server. */
export const BUILTIN_SETTINGS_APP = "builtin:opensrf.settings";

/** Languages served by osrf-prefork (lower case). */
export const OUR_LANGUAGES: readonly string[] = ["typescript", "javascript", "ts", "js"];

/** One active service of the host and what to do with it. */
export type PlannedService =
  /** A module served with `osrf-prefork serve --app <app>`. */
  | { service: string; kind: "serve"; app: string }
  /** The built-in settings server (`osrf-prefork settings`). */
  | { service: string; kind: "settings" }
  /** Not ours to start; `reason` says why, in a few words. */
  | { service: string; kind: "skip"; reason: string };

/** The services of one host. */
export interface HostPlan {
  host: string;
  /** False when opensrf.xml has no `/opensrf/hosts/<host>` (only `<default>` applied). */
  hostKnown: boolean;
  /** In activeapps order, the settings server first (osrf_control starts it first too). */
  services: PlannedService[];
  /** `/dirs/log` of the host config, if set. */
  logDir?: string;
}

/**
 * Builds the plan for `host`.
 * @param tree opensrf.xml as read by `readSettingsFile`.
 * @param file The opensrf.xml path: names it in errors and anchors relative implementations.
 * @throws ConfigError when a TypeScript service has no `<implementation>`.
 */
export function planHost(tree: SettingsTree, host: string, file: string): HostPlan {
  const cfg = hostConfig(tree, host);
  const names = appNames(lookup(cfg, "/activeapps/appname"));
  const services: PlannedService[] = [];
  for (const service of names) {
    const app = lookup(cfg, `/apps/${service}`);
    if (app === undefined || typeof app !== "object" || Array.isArray(app)) {
      services.push({
        service,
        kind: "skip",
        reason: `listed in activeapps but ${file} has no /apps/${service} section`,
      });
      continue;
    }
    const language = text(lookup(app, "language")).toLowerCase();
    if (!OUR_LANGUAGES.includes(language)) {
      services.push({
        service,
        kind: "skip",
        reason: `language ${language || "(none)"} is not served by osrf-prefork (start it with osrf_control)`,
      });
      continue;
    }
    const impl = text(lookup(app, "implementation"));
    if (impl === "") {
      throw new ConfigError({
        file,
        path: `/apps/${service}/implementation`,
        problem: `missing for ${language} service ${service}`,
        expected: "the service module's path, e.g. <implementation>/openils/lib/ts/math.ts</implementation>",
        fix: `or ${BUILTIN_SETTINGS_APP} for opensrf.settings`,
      });
    }
    if (impl === BUILTIN_SETTINGS_APP) services.push({ service, kind: "settings" });
    else
      services.push({ service, kind: "serve", app: isAbsolute(impl) ? impl : resolve(dirname(resolve(file)), impl) });
  }
  services.sort((a, b) => Number(b.kind === "settings") - Number(a.kind === "settings"));
  const logDir = text(lookup(cfg, "/dirs/log"));
  return {
    host,
    hostKnown: host.split(",").some((h) => settingsHostNames(tree).includes(h)),
    services,
    ...(logDir ? { logDir } : {}),
  };
}

function appNames(value: SettingsValue | undefined): string[] {
  const list = Array.isArray(value) ? value : value === undefined ? [] : [value];
  const names = list.map(text).filter((n) => n !== "");
  return [...new Set(names)];
}

function text(value: SettingsValue | undefined): string {
  return typeof value === "string" || typeof value === "number" ? String(value).trim() : "";
}
