/**
 * Where an OpenSRF install keeps things when nothing says otherwise: the one source of the
 * default config paths and of the pid-dir rule, shared by every subcommand.
 */
import { lookup, settingText } from "./settings.ts";
import type { CoreConfig, SettingsTree } from "./types.ts";

/** opensrf_core.xml of a standard install (Evergreen's `/openils/conf`). */
export const DEFAULT_CORE_CONFIG = "/openils/conf/opensrf_core.xml";

/** opensrf.xml of a standard install. */
export const DEFAULT_SETTINGS_FILE = "/openils/conf/opensrf.xml";

/** osrf_control's default pid dir (`@PID_DIR@/run/opensrf` of an OpenSRF install). */
export const DEFAULT_PID_DIR = "/openils/var/run/opensrf";

/** opensrf_core.xml to read: `$OSRF_CONFIG` (as osrf_control honours it), else the standard path. */
export function defaultCoreConfig(env: NodeJS.ProcessEnv = process.env): string {
  return env.OSRF_CONFIG || DEFAULT_CORE_CONFIG;
}

/** opensrf.xml to read: the one given, else `<settings_config>` of opensrf_core.xml, else the standard path. */
export function settingsFileOf(core: Pick<CoreConfig, "opensrf">, given?: string): string {
  return given ?? core.opensrf.settingsConfig ?? DEFAULT_SETTINGS_FILE;
}

/** Where pid files and status sockets live: `--pid-dir`, else `dirs/pid` of the host config, else osrf_control's default. */
export function pidDirOf(hostTree: SettingsTree | undefined, override?: string): string {
  return override ?? (hostTree && settingText(lookup(hostTree, "/dirs/pid"))) ?? DEFAULT_PID_DIR;
}
