/**
 * The `opensrf.system.*` methods every service answers, whatever its author defined.
 *
 * Names, argc and notes of echo / method / method.all are the C library's
 * (osrf_application.c, `register_system_methods`), registered in C's order.
 * `opensrf.system.time` is Perl's (OpenSRF/Application.pm: epoch seconds).
 * `opensrf.system.method.all.summary` exists in neither C nor Perl 3.3; it is the Rust
 * port's (evergreen-universe-rs): one human-readable line per method, optional prefix.
 */
import type { JsonValue } from "../protocol/types.ts";
import type { MethodContext, MethodDefinition, MethodDescription, MethodRegistry, RegisteredMethod } from "./types.ts";

/** api_names of the system methods, without their `.atomic` twins. */
export const SystemMethod = {
  INTROSPECT: "opensrf.system.method",
  INTROSPECT_ALL: "opensrf.system.method.all",
  ECHO: "opensrf.system.echo",
  INTROSPECT_SUMMARY: "opensrf.system.method.all.summary",
  TIME: "opensrf.system.time",
} as const;

/**
 * The introspection object for one method, with the C library's keys in C's order
 * (`_osrfAppSetIntrospectMethod`). C also reports `method: null` for system methods (they
 * have no symbol). `signature` is appended only when the method has one, as Perl reports it.
 *
 * @param m The method.
 * @param service The service name, reported as `service`.
 */
export function describeMethod(m: RegisteredMethod, service: string): MethodDescription {
  const def = m.definition;
  const d: MethodDescription = {
    api_name: m.apiName,
    method: m.system ? null : (def.symbol ?? def.name),
    service,
    notes: def.notes ?? null,
    argc: m.argc,
    sysmethod: m.system ? 1 : 0,
    atomic: m.atomic ? 1 : 0,
    cachable: def.cachable ? 1 : 0,
  };
  if (def.signature !== undefined) d.signature = def.signature;
  return d;
}

/**
 * One line describing a method, e.g. `add(x, y) - Adds two numbers`: params from the
 * signature (optional ones in brackets) or `argN` placeholders for the required ones.
 */
export function summarizeMethod(m: RegisteredMethod): string {
  const def = m.definition;
  const names =
    def.signature?.params.map((p, i) => (i < m.argc ? p.name : `[${p.name}]`)) ??
    Array.from({ length: m.argc }, (_, i) => `arg${i + 1}`);
  const notes = def.notes ? ` - ${def.notes}` : "";
  return `${m.apiName}(${names.join(", ")})${notes}`;
}

function prefixOf(params: JsonValue[]): string | undefined {
  const p = params[0];
  return typeof p === "string" ? p : undefined;
}

/**
 * Builds the system method definitions of a service.
 *
 * @param registry Returns the service's full registry (system methods included); read
 *   when a system method runs, so it may be created after these definitions.
 */
export function systemMethods(registry: () => MethodRegistry): MethodDefinition[] {
  return [
    {
      name: SystemMethod.INTROSPECT,
      argc: 1,
      stream: true,
      notes:
        "Return a list of methods whose names have the same initial substring as that of " +
        "the provided method name PARAMS( methodNameSubstring )",
      handler(ctx: MethodContext) {
        // C answers a non-string prefix with no methods at all.
        const prefix = prefixOf(ctx.params);
        if (prefix === undefined) return;
        for (const m of registry().all()) {
          if (m.apiName.startsWith(prefix)) ctx.respond(describeMethod(m, ctx.service));
        }
      },
    },
    {
      name: SystemMethod.INTROSPECT_ALL,
      argc: 0,
      stream: true,
      notes: "Returns a complete list of methods. PARAMS()",
      handler(ctx: MethodContext) {
        for (const m of registry().all()) ctx.respond(describeMethod(m, ctx.service));
      },
    },
    {
      name: SystemMethod.ECHO,
      argc: 0,
      stream: true,
      notes: "Echos all data sent to the server back to the client. PARAMS([a, b, ...])",
      handler(ctx: MethodContext) {
        for (const p of ctx.params) ctx.respond(p);
      },
    },
    {
      name: SystemMethod.INTROSPECT_SUMMARY,
      argc: 0,
      stream: true,
      notes:
        "Returns a one-line summary of each method, or of those whose names start with " +
        "the provided prefix PARAMS( [methodNameSubstring] )",
      handler(ctx: MethodContext) {
        const prefix = prefixOf(ctx.params) ?? "";
        for (const m of registry().all()) {
          if (m.apiName.startsWith(prefix)) ctx.respond(summarizeMethod(m));
        }
      },
    },
    {
      name: SystemMethod.TIME,
      argc: 0,
      notes: "Returns the current system time as epoch seconds",
      handler() {
        return Math.floor(Date.now() / 1000);
      },
    },
  ];
}
