/**
 * The built-in opensrf.settings service (`osrf-prefork settings`) on a real bus: it answers
 * what a Perl settings server answers from the same opensrf.xml (sample M), and a service
 * started with `serve --settings-from-bus` gets its pool settings from it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Bus, startBus } from "../../devkit/bus.ts";
import { CliProcess } from "../../devkit/processes.ts";
import { RequestError } from "../../src/client/errors.ts";
import { hostConfig, lookup, readSettingsFile } from "../../src/config/settings.ts";
import type { SettingsTree } from "../../src/config/types.ts";

const TIMEOUT = 30_000;
const FIXTURES = join(import.meta.dir, "../fixtures/config");
/** What a real Perl settings server answered for host "localhost" from this file. */
const SAMPLE_M = JSON.parse(readFileSync(join(FIXTURES, "host-config-sample-m.json"), "utf8")) as SettingsTree;

let bus: Bus;
let file: string;
let settings: CliProcess;
let other: CliProcess | undefined;

async function call(method: string, ...params: unknown[]) {
  return bus.client.request("opensrf.settings", method, params as never[]).first();
}

async function failure(method: string, ...params: unknown[]): Promise<RequestError> {
  try {
    await call(method, ...params);
  } catch (e) {
    expect(e).toBeInstanceOf(RequestError);
    return e as RequestError;
  }
  throw new Error(`${method} did not fail`);
}

beforeAll(async () => {
  bus = await startBus();
  file = join(bus.dir, "opensrf.xml");
  // The example file as installed for sample M.
  const sample = readFileSync(join(FIXTURES, "opensrf.xml"), "utf8")
    .replaceAll("LOCALSTATEDIR", "/openils/var")
    .replaceAll("SYSCONFDIR", "/openils/conf");
  writeFileSync(file, sample);
  settings = CliProcess.start([
    "settings",
    "--settings",
    file,
    "--config",
    bus.coreFile,
    "--host",
    "localhost",
    "--logfile",
    "stderr",
    "--loglevel",
    "3",
  ]);
  await settings.untilReady(bus.online("opensrf.settings"));
}, TIMEOUT);

afterAll(async () => {
  if (other) expect(await other.stop("SIGTERM")).toBe(0);
  if (settings) expect(await settings.stop("SIGTERM")).toBe(0);
  await bus?.stop();
}, TIMEOUT);

describe("opensrf.settings (built in)", () => {
  test(
    "host_config.get answers the merged host config, as the Perl server did (sample M)",
    async () => {
      const answer = (await call("opensrf.settings.host_config.get", "localhost")) as SettingsTree;
      expect(answer).toEqual(hostConfig(readSettingsFile(file, { perlNumbers: true }), "localhost"));
      // Byte for byte what the Perl server sent, where that install's file agreed with this one.
      expect(answer.apps).toEqual(SAMPLE_M.apps);
      expect(answer.dirs).toEqual(SAMPLE_M.dirs);
      expect(answer.server_type).toBe(SAMPLE_M.server_type as string);
      expect(
        lookup(answer, "/apps/opensrf.validator/app_settings/validators/emailaddress/modules/b_dns/ignore_ips"),
      ).toBe("127.0.0.1,67.215.65.132");
      expect(lookup(answer, "/apps/opensrf.math/unix_config/max_children")).toBe(15);
    },
    TIMEOUT,
  );

  test(
    "an unknown host gets the default config; reload re-reads the file",
    async () => {
      const tree = readSettingsFile(file, { perlNumbers: true });
      expect(await call("opensrf.settings.host_config.get", "nosuchhost")).toEqual(hostConfig(tree, "nosuchhost"));
      const edited = readFileSync(file, "utf8").replace(
        "<server_type>prefork</server_type>",
        "<server_type>edited</server_type>",
      );
      writeFileSync(file, edited);
      try {
        expect(
          lookup((await call("opensrf.settings.host_config.get", "localhost", 1)) as SettingsTree, "/server_type"),
        ).toBe("edited");
      } finally {
        writeFileSync(file, edited.replace("<server_type>edited</server_type>", "<server_type>prefork</server_type>"));
      }
    },
    TIMEOUT,
  );

  test(
    "default_config.get answers /opensrf/default",
    async () => {
      const tree = readSettingsFile(file, { perlNumbers: true });
      // reload: the drone that served the reload test above may still hold the edited file.
      expect(await call("opensrf.settings.default_config.get", 1)).toEqual(tree.default as SettingsTree);
    },
    TIMEOUT,
  );

  test(
    "xpath.get answers a list of converted nodes, in document order",
    async () => {
      const tree = readSettingsFile(file, { perlNumbers: true });
      expect(await call("opensrf.settings.xpath.get", "/opensrf/default/apps/opensrf.math")).toEqual([
        lookup(tree, "/default/apps/opensrf.math") as SettingsTree,
      ]);
      // Relative to <opensrf>, as Perl's findnodes on the document element.
      expect(await call("opensrf.settings.xpath.get", "default/dirs/log")).toEqual(["/openils/var/log"]);
      // Every match, default first (document order), not merged: the .raw twin answers the same.
      for (const m of ["opensrf.settings.xpath.get", "opensrf.settings.xpath.get.raw"]) {
        expect(await call(m, "//opensrf.persist/app_settings/dbfile")).toEqual([
          "/openils/var/persist.db",
          "/openils/var/persist-override.db",
        ]);
      }
      const both = (await call(
        "opensrf.settings.xpath.get",
        "/opensrf/hosts/localhost/activeapps | /opensrf/default/dirs",
      )) as SettingsTree[];
      expect(both).toEqual([
        lookup(tree, "/default/dirs") as SettingsTree,
        lookup(tree, "/hosts/localhost/activeapps") as SettingsTree,
      ]);
      expect(await call("opensrf.settings.xpath.get", "/opensrf/nothing/here")).toEqual([]);
    },
    TIMEOUT,
  );

  test(
    "bad params and unsupported XPath get a 400 naming the problem",
    async () => {
      const noHost = await failure("opensrf.settings.host_config.get", 5);
      expect(noHost.statusCode).toBe(400);
      expect(noHost.statusText).toContain("host name");
      const bad = await failure("opensrf.settings.xpath.get", "/opensrf/default/apps/*[starts-with(name(), 'x')]");
      expect(bad.statusCode).toBe(400);
      expect(bad.statusText).toContain("unsupported XPath");
    },
    TIMEOUT,
  );

  test(
    "the system methods list the four settings methods",
    async () => {
      const all = (await bus.client.request("opensrf.settings", "opensrf.system.method.all").collect()) as Array<{
        api_name: string;
      }>;
      const names = all.map((m) => m.api_name);
      for (const m of [
        "opensrf.settings.host_config.get",
        "opensrf.settings.default_config.get",
        "opensrf.settings.xpath.get",
        "opensrf.settings.xpath.get.raw",
      ]) {
        expect(names).toContain(m);
      }
    },
    TIMEOUT,
  );

  test(
    "serve --settings-from-bus takes its pool settings from it",
    async () => {
      const app = join(bus.dir, "cslow.ts");
      writeFileSync(
        app,
        `import { defineService } from "osrf-prefork";\nexport default defineService({ methods: [{ name: "pid", handler: () => process.pid }] });\n`,
      );
      // opensrf.cslow in the sample: min 5, max 15, backlog 10, keepalive 3 — none of them defaults.
      other = CliProcess.start([
        "serve",
        "--service",
        "opensrf.cslow",
        "--app",
        app,
        "--config",
        bus.coreFile,
        "--settings-from-bus",
        "--host",
        "localhost",
        "--logfile",
        "stderr",
        "--loglevel",
        "3",
      ]);
      await other.untilReady(bus.online("opensrf.cslow"));
      expect(other.output).toMatch(
        /opensrf\.cslow with max_requests=1000, min_children=5, max_children=15, max_backlog_queue=10, keepalive=3/,
      );
      expect(typeof (await bus.client.request("opensrf.cslow", "pid").first())).toBe("number");
    },
    TIMEOUT,
  );
});
