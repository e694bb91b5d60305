/**
 * The entry points service authors call: `defineService` and `defineMethod`.
 */
import type { JsonValue } from "../protocol/types.ts";
import { createRegistry } from "./registry.ts";
import type { MethodDefinition, MethodParams, ServiceDefinition, ServiceInput } from "./types.ts";

/**
 * Declares one method. An identity function that gives the handler's params their types:
 *
 * @example
 * const add = defineMethod<[number, number]>({
 *   name: "add",
 *   argc: 2,
 *   handler: (_ctx, a, b) => a + b,
 * });
 *
 * The params tuple is a promise the author makes, not a run-time check: the host only
 * guarantees at least `argc` params. Validate anything a caller could get wrong.
 */
export function defineMethod<P extends MethodParams = JsonValue[]>(def: MethodDefinition<P>): MethodDefinition<P> {
  return def;
}

/**
 * Declares a service: its methods and optional lifecycle hooks. Checks every method now
 * (names, argc, handlers, duplicates, clashes with `opensrf.system.*` and `.atomic`
 * names) so mistakes surface when the module loads rather than on the first request.
 *
 * Export the result as the module's default export so the server can load it.
 *
 * @example
 * export default defineService({
 *   name: "opensrf.math",
 *   methods: [add, sub],
 * });
 *
 * @throws TypeError describing the first invalid method.
 */
export function defineService(input: ServiceInput): ServiceDefinition {
  if (input === null || typeof input !== "object") throw new TypeError("defineService needs an object");
  if (input.name !== undefined && (typeof input.name !== "string" || input.name === "")) {
    throw new TypeError("service name must be a non-empty string when given");
  }
  for (const hook of ["init", "childInit", "childExit"] as const) {
    if (input[hook] !== undefined && typeof input[hook] !== "function") {
      throw new TypeError(`${hook} must be a function when given`);
    }
  }
  createRegistry(input);
  return Object.freeze({ ...input, methods: Object.freeze([...input.methods]) });
}
