/**
 * The `--bus` option of the subcommands that join the bus.
 */
import { BUS_ENV } from "../config/bus.ts";

/** `--bus xmpp|redis`: overrides `$OSRF_BUS` and `<bus>` of opensrf_core.xml (default XMPP). */
export const busArg = {
  type: "string",
  description: `Message bus: xmpp (OpenSRF 3.x) or redis (OpenSRF main); default $${BUS_ENV}, else <bus> of the config, else xmpp`,
} as const;
