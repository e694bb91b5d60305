/**
 * Which bus a process speaks, by precedence: `--bus` on the command line, else the `OSRF_BUS`
 * environment variable, else `<bus>` in the client section of opensrf_core.xml, else XMPP.
 * An OpenSRF main install's own opensrf_core.xml has no `<bus>` and loads unchanged: its
 * operators set `OSRF_BUS=redis` (as osrf_control's `OSRF_CONFIG` is set), or add the element.
 */
import type { BusKind } from "../bus/types.ts";
import { ConfigError } from "./errors.ts";
import { DEFAULT_PORT, DEFAULT_REDIS_PORT } from "./ports.ts";
import type { ClientConfig } from "./types.ts";

/** The environment variable naming the bus. */
export const BUS_ENV = "OSRF_BUS";

/** Where the bus choice may come from besides the file. */
export interface BusChoice {
  /** `--bus` of the command line. */
  flag?: string | undefined;
  /** Environment to read {@link BUS_ENV} from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** `value` as a bus name; `source` names where it came from in the error. */
export function parseBus(value: string, source: string): BusKind {
  const lower = value.trim().toLowerCase();
  if (lower === "xmpp" || lower === "redis") return lower;
  throw new ConfigError({
    file: source,
    path: "",
    problem: `${source}: unknown bus "${value}"`,
    expected: "xmpp (OpenSRF 3.x) or redis (OpenSRF main)",
  });
}

/** The bus to use: `--bus`, else `$OSRF_BUS`, else the file's `<bus>`, else xmpp. */
export function busOf(cfg: Pick<ClientConfig, "bus">, choice: BusChoice = {}): BusKind {
  if (choice.flag) return parseBus(choice.flag, "--bus");
  const env = (choice.env ?? process.env)[BUS_ENV];
  if (env) return parseBus(env, BUS_ENV);
  return cfg.bus ?? "xmpp";
}

/**
 * `cfg` for the bus chosen by {@link busOf}: `bus` set, and `port` the bus's default when the
 * file gave none (so a main install's file without `<port>` reaches Redis on 6379).
 * @throws ConfigError for an unknown bus name in `--bus` or `OSRF_BUS`.
 */
export function withBus<T extends ClientConfig>(cfg: T, choice: BusChoice = {}): T {
  const bus = busOf(cfg, choice);
  if (bus === (cfg.bus ?? "xmpp")) return cfg.bus ? cfg : { ...cfg, bus };
  const port = cfg.portFromFile ? cfg.port : bus === "redis" ? DEFAULT_REDIS_PORT : DEFAULT_PORT;
  return { ...cfg, bus, port };
}
