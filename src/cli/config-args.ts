/**
 * The `--config`, `--settings` and `--status-socket` options subcommands share, so their defaults and
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

/** `--status-socket` of the listeners (`serve`, `settings`). */
export const statusSocketArg = {
  type: "string",
  description:
    'Serve /status and /metrics on this unix socket (overrides unix_config/status_socket; default: <pid dir>/<service>.status.sock, else $XDG_RUNTIME_DIR/osrf-prefork or <tmp>/osrf-prefork-<uid>; "" = none)',
} as const;
