/**
 * opensrf.settings — the settings server, built in: serves opensrf.xml with the methods,
 * params and answers of Perl's OpenSRF::Application::Settings, so C, Perl and our own
 * services (`serve --settings-from-bus`) can fetch their settings from it.
 *
 * | method | params | result |
 * |---|---|---|
 * | `opensrf.settings.host_config.get` | [host], [reload] | `/opensrf/default` merged with `/opensrf/hosts/<host>` (no host: the default alone) |
 * | `opensrf.settings.default_config.get` | [reload] | `/opensrf/default` |
 * | `opensrf.settings.xpath.get` (and `.raw`) | xpath, [reload] | array of the selected nodes, each converted |
 *
 * A true `reload` param reads the file again first. Each drone reads the file once when it
 * starts, so SIGHUP (which replaces drones) also picks up an edited file.
 *
 * Run it with `osrf-prefork settings`, which serves this module under the prefork server
 * as `--app builtin:opensrf.settings` with the file named in {@link SETTINGS_FILE_ENV}.
 */

import { defineMethod, defineService } from "../app/define.ts";
import { MethodException } from "../app/errors.ts";
import type { MethodContext } from "../app/types.ts";
import { DEFAULT_SETTINGS_FILE } from "../config/defaults.ts";
import { StatusCode } from "../protocol/status.ts";
import type { JsonValue } from "../protocol/types.ts";
import { SettingsDocument } from "./document.ts";
import { XPathError } from "./xpath.ts";

/** Environment variable naming the opensrf.xml to serve (set by `osrf-prefork settings`; drones inherit it). */
export const SETTINGS_FILE_ENV = "OSRF_PREFORK_SETTINGS_FILE";
/** The opensrf.xml this process serves ({@link DEFAULT_SETTINGS_FILE} when the variable is unset). */
export function settingsFile(): string {
  return process.env[SETTINGS_FILE_ENV] || DEFAULT_SETTINGS_FILE;
}

let current: SettingsDocument | undefined;

/** The parsed file, read again first when the caller passed a true `reload`. */
function documentFor(ctx: MethodContext<JsonValue[]>, reload: JsonValue | undefined): SettingsDocument {
  if (current && !reload) return current;
  try {
    current = SettingsDocument.load(settingsFile());
  } catch (e) {
    ctx.log.error(`cannot read settings: ${(e as Error).message}`);
    // The previous parse stays in use; the caller learns the reload failed.
    throw new MethodException(StatusCode.INTERNALSERVERERROR, `${ctx.method}: ${(e as Error).message}`);
  }
  return current;
}

function stringParam(ctx: MethodContext<JsonValue[]>, value: JsonValue | undefined, what: string): string {
  if (typeof value !== "string" || value === "") {
    throw new MethodException(
      StatusCode.BADREQUEST,
      `${ctx.method} needs ${what} as a non-empty string, got ${JSON.stringify(value ?? null)}`,
    );
  }
  return value;
}

const hostConfigGet = defineMethod({
  name: "opensrf.settings.host_config.get",
  // No argc, as in Perl: without a host (undef, or "") it answers /opensrf/default alone.
  notes:
    "Returns the host's config: /opensrf/default of opensrf.xml overlaid by /opensrf/hosts/<host>. PARAMS([host], [reload])",
  signature: {
    desc: "The merged settings of one host",
    params: [
      {
        name: "host",
        desc: "host name as under /opensrf/hosts (commas join several); none: the default",
        type: "string",
      },
      { name: "reload", desc: "read opensrf.xml again first", type: "boolean" },
    ],
    return: { desc: "the host config object, or null if opensrf.xml has neither default nor host", type: "object" },
  },
  handler(ctx, host, reload) {
    const doc = documentFor(ctx, reload);
    if (host === undefined || host === null || host === "") return doc.defaultConfig();
    return doc.hostConfig(stringParam(ctx, host, "a host name"));
  },
});

const defaultConfigGet = defineMethod({
  name: "opensrf.settings.default_config.get",
  notes: "Returns /opensrf/default of opensrf.xml. PARAMS([reload])",
  signature: {
    desc: "The default settings",
    params: [{ name: "reload", desc: "read opensrf.xml again first", type: "boolean" }],
    return: { desc: "the /opensrf/default object, or null", type: "object" },
  },
  handler: (ctx, reload) => documentFor(ctx, reload).defaultConfig(),
});

function xpathMethod(name: string) {
  return defineMethod({
    name,
    argc: 1,
    notes:
      "Returns every node of opensrf.xml the XPath selects, each converted like host_config.get. PARAMS(xpath, [reload])",
    signature: {
      desc: "Settings nodes selected by an XPath",
      params: [
        {
          name: "xpath",
          desc: "e.g. /opensrf/default/apps/opensrf.math; relative paths start at <opensrf>",
          type: "string",
        },
        { name: "reload", desc: "read opensrf.xml again first", type: "boolean" },
      ],
      return: { desc: "array of converted nodes in document order ([] if none)", type: "array" },
    },
    handler(ctx, xpath, reload) {
      const expr = stringParam(ctx, xpath, "an XPath");
      try {
        return documentFor(ctx, reload).xpath(expr);
      } catch (e) {
        if (e instanceof XPathError) throw new MethodException(StatusCode.BADREQUEST, `${ctx.method}: ${e.message}`);
        throw e;
      }
    },
  });
}

export default defineService({
  name: "opensrf.settings",
  methods: [
    hostConfigGet,
    defaultConfigGet,
    xpathMethod("opensrf.settings.xpath.get"),
    xpathMethod("opensrf.settings.xpath.get.raw"),
  ],
  // In the listener: refuse to start on a file that cannot be served.
  init(env) {
    const doc = SettingsDocument.load(settingsFile());
    env.log.info(`${env.service}: serving ${doc.file}`);
  },
  childInit() {
    current = SettingsDocument.load(settingsFile());
  },
});
