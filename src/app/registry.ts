/**
 * The table of callable api_names of one service: the author's methods, an `.atomic` twin
 * of each, and the system methods (with their twins).
 *
 * C creates `.atomic` twins only for methods registered as streaming; here every method
 * gets one, so any method can be called atomically (a superset peers cannot notice except
 * through introspection, which lists the twins that exist).
 */
import { systemMethods } from "./system-methods.ts";
import type { AnyMethodDefinition, MethodRegistry, RegisteredMethod, ServiceInput } from "./types.ts";

/** Suffix of the twin that collects all results into one array. */
export const ATOMIC_SUFFIX = ".atomic";

/** Names reserved by the system methods (twins included). */
const RESERVED: ReadonlySet<string> = new Set(
  systemMethods(() => {
    throw new Error("unused");
  }).flatMap((d) => [d.name, d.name + ATOMIC_SUFFIX]),
);

/**
 * Checks one author method definition.
 *
 * @throws TypeError describing the first problem found.
 */
export function checkMethod(def: AnyMethodDefinition, index: number): void {
  const at = `methods[${index}]`;
  if (def === null || typeof def !== "object") throw new TypeError(`${at} must be an object`);
  if (typeof def.name !== "string" || def.name.trim() === "") {
    throw new TypeError(`${at}.name must be a non-empty string`);
  }
  const name = def.name;
  if (name !== name.trim()) throw new TypeError(`method "${name}": name has surrounding whitespace`);
  if (name.endsWith(ATOMIC_SUFFIX)) {
    throw new TypeError(`method "${name}": names ending in "${ATOMIC_SUFFIX}" are reserved for atomic twins`);
  }
  if (RESERVED.has(name)) throw new TypeError(`method "${name}": name is reserved for a system method`);
  if (typeof def.handler !== "function") throw new TypeError(`method "${name}": handler must be a function`);
  if (def.argc !== undefined && (!Number.isSafeInteger(def.argc) || def.argc < 0)) {
    throw new TypeError(`method "${name}": argc must be a non-negative integer, got ${String(def.argc)}`);
  }
}

function register(out: Map<string, RegisteredMethod>, def: AnyMethodDefinition, system: boolean): void {
  const argc = def.argc ?? 0;
  for (const atomic of [false, true]) {
    const apiName = atomic ? def.name + ATOMIC_SUFFIX : def.name;
    if (out.has(apiName)) throw new TypeError(`method "${def.name}" is defined twice`);
    out.set(apiName, Object.freeze({ apiName, definition: def, atomic, system, argc }));
  }
}

/**
 * Builds the registry of a service: author methods in their order (each followed by its
 * `.atomic` twin), then the system methods in C's order. Introspection reports this order.
 *
 * @throws TypeError for an invalid or duplicate method definition.
 */
export function createRegistry(service: Pick<ServiceInput, "methods">): MethodRegistry {
  if (!Array.isArray(service.methods)) throw new TypeError("methods must be an array");
  const table = new Map<string, RegisteredMethod>();
  service.methods.forEach((def, i) => {
    checkMethod(def, i);
    register(table, def, false);
  });
  const registry: MethodRegistry = {
    get: (apiName) => table.get(apiName),
    all: () => [...table.values()],
  };
  for (const def of systemMethods(() => registry)) register(table, def, true);
  return registry;
}
