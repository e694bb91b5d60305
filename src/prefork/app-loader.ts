/**
 * Loading a service module given on the command line (`--app`).
 */
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { defineService } from "../app/define.ts";
import type { ServiceDefinition } from "../app/types.ts";
import { AppLoadError } from "./errors.ts";

/**
 * An `--app` path made absolute against the current directory (a compiled binary's own
 * `import.meta.dir` is virtual, so it cannot anchor user paths).
 */
export function resolveAppPath(path: string): string {
  return isAbsolute(path) ? path : resolve(process.cwd(), path);
}

let reloads = 0;

/**
 * Imports the module and checks its default export is a service definition (the result
 * of `defineService`, or a plain object of the same shape, which is checked the same way).
 * @param fresh Bypass the module cache (HUP check in a long-lived process): the module
 *   file itself is read again; modules it imports stay cached.
 * @throws AppLoadError naming the file and what is wrong.
 */
export async function loadServiceModule(path: string, fresh = false): Promise<ServiceDefinition> {
  if (!existsSync(path)) throw new AppLoadError(`service module ${path} does not exist (check --app)`, { app: path });
  const url = pathToFileURL(path).href + (fresh ? `?reload=${++reloads}` : "");
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (e) {
    throw new AppLoadError(`cannot load service module ${path}: ${(e as Error).message}`, { app: path });
  }
  const def = mod.default;
  if (def === null || typeof def !== "object") {
    throw new AppLoadError(
      `service module ${path} has no service as its default export (expected \`export default defineService({...})\`)`,
      { app: path },
    );
  }
  try {
    return defineService(def as ServiceDefinition);
  } catch (e) {
    throw new AppLoadError(`service module ${path}: ${(e as Error).message}`, { app: path });
  }
}
