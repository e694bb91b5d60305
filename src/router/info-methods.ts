/**
 * The `opensrf.router.info.*` methods the router answers itself, from its registry, as the C
 * router does.
 */
import type { JsonValue } from "../protocol/types.ts";

/** What the info methods read of a router's table (the XMPP Registry, the Redis QueueTable). */
export interface RouterTable {
  /** Registered classes, in registration order. */
  classNames(): string[];
  /** `{node: forwards}` of one class; `{}` for an unknown one. */
  classStats(className: string): Record<string, number>;
  /** Forwards to one class in all. */
  classTotal(className: string): number;
}

/** Methods the router answers itself (REQUESTs sent to `router@<domain>/router`). */
export const ROUTER_METHODS = [
  "opensrf.router.info.class.list",
  "opensrf.router.info.stats.class.summary",
  "opensrf.router.info.stats.class",
  "opensrf.router.info.stats.class.all",
  "opensrf.router.info.stats.class.node.all",
] as const;

/**
 * Answer a router info method, as the C router does. Returns `undefined` for an
 * unknown method (the caller replies "Router method not found").
 */
export function answerInfoMethod(
  registry: RouterTable,
  method: string,
  params: readonly JsonValue[],
): { found: true; result: JsonValue } | { found: false } {
  const classParam = typeof params[0] === "string" ? params[0] : String(params[0] ?? "");
  switch (method) {
    case "opensrf.router.info.class.list":
      return { found: true, result: registry.classNames() };
    case "opensrf.router.info.stats.class.summary":
      return { found: true, result: registry.classTotal(classParam) };
    case "opensrf.router.info.stats.class":
      return { found: true, result: registry.classStats(classParam) };
    case "opensrf.router.info.stats.class.all": {
      const all: Record<string, JsonValue> = {};
      for (const c of registry.classNames()) all[c] = registry.classStats(c);
      return { found: true, result: all };
    }
    case "opensrf.router.info.stats.class.node.all": {
      const totals: Record<string, JsonValue> = {};
      for (const c of registry.classNames()) totals[c] = registry.classTotal(c);
      return { found: true, result: totals };
    }
    default:
      return { found: false };
  }
}
