/**
 * Loading a service module given on the command line (`--app`).
 */
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { defineService } from "../app/define.ts";
import * as serviceApi from "../app/index.ts";
import type { ServiceDefinition } from "../app/types.ts";
import { AppLoadError } from "./errors.ts";

/** Name service modules import the API by: `import { defineService } from "osrf-prefork"`. */
export const API_MODULE = "osrf-prefork";

let apiRegistered = false;

/**
 * Makes `import … from "osrf-prefork"` resolve, in a module loaded at run time, to this
 * program's own service API. A compiled binary's bundle is invisible to files outside it,
 * and sharing the one module instance keeps `instanceof MethodException` working.
 */
export function registerApiModule(): void {
  if (apiRegistered) return;
  apiRegistered = true;
  Bun.plugin({
    name: API_MODULE,
    setup(build) {
      build.module(API_MODULE, () => ({ exports: { ...serviceApi }, loader: "object" }));
    },
  });
}

/** `--app` prefix naming a service module built into the program, e.g. `builtin:opensrf.settings`. */
export const BUILTIN_APP_PREFIX = "builtin:";

/** Service modules built into the program (static imports, so the bundle carries them). */
const BUILTIN_APPS: Record<string, () => Promise<{ default?: unknown }>> = {
  "opensrf.settings": () => import("../settings-service/service.ts"),
};

/**
 * An `--app` path made absolute against the current directory (a compiled binary's own
 * `import.meta.dir` is virtual, so it cannot anchor user paths); `builtin:` names stay as they are.
 */
export function resolveAppPath(path: string): string {
  return isAbsolute(path) || path.startsWith(BUILTIN_APP_PREFIX) ? path : resolve(process.cwd(), path);
}

let reloads = 0;

/**
 * Imports the module (or the built-in one a `builtin:` name selects, with `"osrf-prefork"`
 * resolvable first) and checks its default export is a service definition (the result
 * of `defineService`, or a plain object of the same shape, which is checked the same way).
 * @param fresh Bypass the module cache (HUP check in a long-lived process): the module
 *   file itself is read again; modules it imports stay cached.
 * @throws AppLoadError naming the file and what is wrong.
 */
export async function loadServiceModule(path: string, fresh = false): Promise<ServiceDefinition> {
  const isBuiltin = path.startsWith(BUILTIN_APP_PREFIX);
  const builtin = isBuiltin ? BUILTIN_APPS[path.slice(BUILTIN_APP_PREFIX.length)] : undefined;
  if (isBuiltin && !builtin) {
    const known = Object.keys(BUILTIN_APPS).map((n) => BUILTIN_APP_PREFIX + n);
    throw new AppLoadError(`no built-in service ${path} (known: ${known.join(", ")})`, { app: path });
  }
  registerApiModule();
  if (!builtin && !existsSync(path))
    throw new AppLoadError(`service module ${path} does not exist (check --app)`, { app: path });
  const url = builtin ? path : pathToFileURL(path).href + (fresh ? `?reload=${++reloads}` : "");
  let mod: { default?: unknown };
  try {
    mod = builtin ? await builtin() : ((await import(url)) as { default?: unknown });
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
