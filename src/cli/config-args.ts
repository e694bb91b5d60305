/**
 * The `--config` and `--settings` options every subcommand shares, so their defaults and
 * help texts come from one place (src/config/defaults.ts).
 */
import { DEFAULT_CORE_CONFIG, DEFAULT_SETTINGS_FILE, defaultCoreConfig } from "../config/defaults.ts";

/** `--config`: opensrf_core.xml, default `$OSRF_CONFIG`, else the standard path. */
export function coreConfigArg(what = "opensrf_core.xml") {
  return {
    type: "string",
    description: `${what} (default: $OSRF_CONFIG, else ${DEFAULT_CORE_CONFIG})`,
    default: defaultCoreConfig(),
  } as const;
}

/** How the default opensrf.xml is found, for help texts. */
export const SETTINGS_FILE_DEFAULT = `<settings_config> of opensrf_core.xml, else ${DEFAULT_SETTINGS_FILE}`;
