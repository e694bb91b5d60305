/**
 * The built-in opensrf.settings methods called as a drone calls them, on a small opensrf.xml:
 * what Perl's OpenSRF::Application::Settings answers for the same params.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MethodException } from "../../src/app/errors.ts";
import type { AnyMethodDefinition, MethodContext } from "../../src/app/types.ts";
import settings, { SETTINGS_FILE_ENV } from "../../src/settings-service/service.ts";

const XML = `<?xml version="1.0"?>
<opensrf version="0.0.3">
  <default><apps><a.one><keepalive>3</keepalive></a.one></apps></default>
  <hosts><h1><apps><a.one><keepalive>9</keepalive></a.one></apps></h1></hosts>
</opensrf>
`;

let dir: string;
const saved = process.env[SETTINGS_FILE_ENV];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "osrf-settings-methods-"));
  writeFileSync(join(dir, "opensrf.xml"), XML);
  process.env[SETTINGS_FILE_ENV] = join(dir, "opensrf.xml");
});

afterAll(() => {
  if (saved === undefined) delete process.env[SETTINGS_FILE_ENV];
  else process.env[SETTINGS_FILE_ENV] = saved;
  rmSync(dir, { recursive: true, force: true });
});

function method(name: string): AnyMethodDefinition {
  const m = settings.methods.find((d) => d.name === name);
  if (!m) throw new Error(`no ${name}`);
  return m;
}

/** Runs a handler the way the host does after its argc check. */
async function call(name: string, ...params: unknown[]): Promise<unknown> {
  const m = method(name);
  if (params.length < (m.argc ?? 0)) throw new Error(`${name} needs ${m.argc} params`);
  const ctx = { method: name, params, log: { error() {} } } as unknown as MethodContext;
  return m.handler(ctx, ...(params as never[]));
}

describe("opensrf.settings.host_config.get", () => {
  test("with a host: /opensrf/default overlaid by that host", async () => {
    expect(await call("opensrf.settings.host_config.get", "h1")).toEqual({ apps: { "a.one": { keepalive: 9 } } });
  });

  test("without a host, or with null or '': /opensrf/default alone, as Perl's get_server_config(undef)", async () => {
    // Perl registers it without argc, so a request with no params reaches the method.
    expect(method("opensrf.settings.host_config.get").argc ?? 0).toBe(0);
    const dflt = await call("opensrf.settings.default_config.get");
    expect(dflt).toEqual({ apps: { "a.one": { keepalive: 3 } } });
    expect(await call("opensrf.settings.host_config.get")).toEqual(dflt);
    expect(await call("opensrf.settings.host_config.get", null)).toEqual(dflt);
    expect(await call("opensrf.settings.host_config.get", "")).toEqual(dflt);
  });

  test("a host that is not a string is still refused with a 400", async () => {
    const err = await Promise.resolve(call("opensrf.settings.host_config.get", 5)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MethodException);
    expect((err as MethodException).statusCode).toBe(400);
  });
});
