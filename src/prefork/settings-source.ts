/**
 * Where a listener gets its service's settings: a local opensrf.xml (default), or the
 * bus's `opensrf.settings` service as the C prefork does (`host_config.get` [hostname]).
 */
import type { OsrfClient } from "../client/types.ts";
import { readPreforkSettings } from "../config/prefork-settings.ts";
import { hostConfig, readSettingsFile, settingsHostNames } from "../config/settings.ts";
import type { PreforkSettings, SettingsTree } from "../config/types.ts";
import { SettingsError } from "./errors.ts";

/** A settings source. */
export type SettingsSource =
  /** opensrf.xml: `/opensrf/default` overlaid by `/opensrf/hosts/<host>`. */
  | { kind: "file"; file: string; host: string }
  /** The settings server, through a client on the listener's connection. */
  | { kind: "bus"; client: OsrfClient; host: string; timeout?: number };

/** The settings service and method C's `osrf_settings_retrieve` calls. */
export const SETTINGS_SERVICE = "opensrf.settings";
export const HOST_CONFIG_METHOD = "opensrf.settings.host_config.get";

/**
 * Reads `service`'s prefork settings. Fixed-up values and assumed defaults are listed in
 * the result's `warnings`.
 * @throws ConfigError for a bad file or value; SettingsError when the settings server
 *   cannot be asked or answers nonsense.
 */
export async function loadSettings(source: SettingsSource, service: string): Promise<PreforkSettings> {
  if (source.kind === "file") {
    const tree = readSettingsFile(source.file);
    const hostUnknown = !settingsHostNames(tree).includes(source.host);
    const settings = readPreforkSettings(hostConfig(tree, source.host), service, source.file);
    if (hostUnknown) {
      settings.warnings.unshift(
        `${source.file}: /opensrf/hosts/${source.host}: no such host; using /opensrf/default only (pass --host to pick another)`,
      );
    }
    return settings;
  }
  let answer: unknown;
  try {
    answer = await source.client
      .request(SETTINGS_SERVICE, HOST_CONFIG_METHOD, [source.host], { timeout: source.timeout ?? 30 })
      .first();
  } catch (e) {
    throw new SettingsError(
      `cannot get settings for host ${source.host} from ${SETTINGS_SERVICE}: ${(e as Error).message}`,
      {
        service,
      },
    );
  }
  if (answer === null || typeof answer !== "object" || Array.isArray(answer)) {
    throw new SettingsError(
      `${SETTINGS_SERVICE} answered ${HOST_CONFIG_METHOD} [${source.host}] with ${answer === undefined ? "nothing" : typeof answer}, not a host config object`,
      { service },
    );
  }
  return readPreforkSettings(answer as SettingsTree, service, `${SETTINGS_SERVICE} (host ${source.host})`);
}
