/**
 * `osrf-prefork settings` in place of the real Perl opensrf.settings, behind the real C
 * router: the REAL C opensrf.math / opensrf.dbmath (opensrf-c asks host_config.get at start)
 * and a REAL Perl service — opensrf.slooooooow, OpenSRF::Application::Slooooooow as the 3.3
 * release ships it, run by osrf_control — start and serve with settings that only our server
 * has. A second stack runs the real Perl settings server on the same settings, to compare answers.
 *
 * Without the tarball this file prints one "skipped" line (set OPENSRF_SRC); with CI set it fails.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PeerService } from "../../devkit/opensrf/configs.ts";
import { ensurePeer, peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import { createOpenSrfStack, type OpenSrfStack, startTogether } from "../../devkit/opensrf/stack.ts";
import type { CliProcess } from "../../devkit/processes.ts";

const HAVE_PEER = peerAvailableForTests("test/interop/settings-vs-real.test.ts");

/** The Perl example app of the release; not active on the host in the stack's own opensrf.xml. */
const SLOW: PeerService = {
  name: "opensrf.slooooooow",
  language: "perl",
  implementation: "OpenSRF::Application::Slooooooow",
  keepalive: 1,
  active: false,
};

/** Pool sizes no default has, so the drone counts show whose settings a service got. */
const DRONES = 3;

/**
 * The settings only our server serves: 3 drones for opensrf.dbmath and opensrf.slooooooow
 * (the stack's file: 1), and opensrf.slooooooow active on the host (the stack's file: not).
 */
function ourSettings(xml: string): string {
  const pool = (x: string, app: string) =>
    x.replace(
      new RegExp(
        `(<${app.replace(".", "\\.")}>[\\s\\S]*?)<min_children>1</min_children>([\\s\\S]*?)<max_spare_children>2<`,
      ),
      `$1<min_children>${DRONES}</min_children>$2<max_spare_children>${DRONES + 1}<`,
    );
  const out = pool(pool(xml, "opensrf.dbmath"), "opensrf.slooooooow").replace(
    /(<hosts>[\s\S]*?<activeapps>[\s\S]*?)(\s*<\/activeapps>)/,
    "$1\n        <appname>opensrf.slooooooow</appname>$2",
  );
  if (out.split(`<min_children>${DRONES}</min_children>`).length !== 3 || !/<appname>opensrf\.slooooooow</.test(out)) {
    throw new Error(`ourSettings: the stack's opensrf.xml changed its layout:\n${xml}`);
  }
  return out;
}

describe.skipIf(!HAVE_PEER)("osrf-prefork settings serving the real C and Perl services' start-up", () => {
  /** C router, our settings server, real C and Perl services. */
  let ours: OpenSrfStack;
  let settings: CliProcess;
  /** C router and the real Perl settings server on the same settings, for comparison. */
  let perl: OpenSrfStack;

  beforeAll(async () => {
    // A cold cache means apt plus a full autotools build: minutes, once per machine.
    await ensurePeer();
    [ours, perl] = await startTogether([startOurs(), startPerl()]);
    settings = ours.preforkListener("opensrf.settings")!;
  }, 15 * 60_000);

  afterAll(async () => {
    await Promise.all([ours?.stop(), perl?.stop()]);
  }, 60_000);

  const drones = (service: string) =>
    ours.processes().filter((p) => p.role === "drone" && p.service === service && p.impl === "opensrf").length;

  test("the real C opensrf.math and opensrf.dbmath start from ours, and answer srfsh and Perl", async () => {
    const procs = ours.processes();
    expect(procs.filter((p) => p.role === "listener").map((p) => [p.service, p.impl])).toEqual([
      ["opensrf.settings", "prefork"],
      ["opensrf.dbmath", "opensrf"],
      ["opensrf.math", "opensrf"],
      ["opensrf.slooooooow", "opensrf"],
    ]);
    const run = await ours.srfsh("request opensrf.math add 2, 2");
    expect(run.replies[0]?.data, run.stdout + run.stderr).toEqual([4]);
    // The Perl client asks opensrf.settings (ours) for apps/opensrf.math before calling it.
    const p = await ours.perl(`
      print encode_json([OpenSRF::AppSession->create("opensrf.math")->request("add", 2, 3)->gather(1)]), "\\n";
    `);
    expect(p.stdout.trim(), p.stderr).toBe("[5]");
  });

  test(`a pool size only our opensrf.xml has takes effect: the real C opensrf.dbmath runs ${DRONES} drones`, async () => {
    expect(readFileSync(ours.paths.settings, "utf8")).toMatch(/<opensrf\.dbmath>[\s\S]*?<min_children>1</);
    await waitFor(() => drones("opensrf.dbmath") === DRONES, `${DRONES} opensrf.dbmath drones`);
    // opensrf.math, the same in both files, keeps the stack's 1.
    expect(drones("opensrf.math")).toBe(1);
  });

  test("the real Perl opensrf.slooooooow starts from ours alone: listed, language and pool only ours have", async () => {
    // osrf_control found it in activeapps with language perl, both asked from ours: the stack's
    // own opensrf.xml does not list it, and its core file here names no settings file.
    expect(readFileSync(ours.paths.settings, "utf8")).not.toMatch(/<appname>opensrf\.slooooooow</);
    await waitFor(() => drones("opensrf.slooooooow") === DRONES, `${DRONES} opensrf.slooooooow drones`);
    const run = await ours.srfsh('request opensrf.slooooooow opensrf.slooooooow.wait 0, "x"');
    expect(run.replies[0]?.data, run.stdout).toEqual([["0", "x"]]);
  });

  test("ours answered the start-up lookups: opensrf-c's host_config.get and Perl's (host, undef reload)", () => {
    const lookups = settings.output.split("\n").filter((l) => l.includes("Running opensrf.settings"));
    // Two C services: [host]; osrf_control (Perl SettingsClient): [host, reload] with reload undef.
    expect(lookups.filter((l) => l.endsWith('opensrf.settings.host_config.get [ "localhost" ]'))).toHaveLength(2);
    expect(lookups.filter((l) => l.endsWith('opensrf.settings.host_config.get [ "localhost",null ]'))).not.toEqual([]);
  });

  test("ours answers srfsh what the real Perl opensrf.settings answers from the same settings", async () => {
    const calls = [
      'opensrf.settings.host_config.get "localhost"',
      'opensrf.settings.host_config.get "localhost", 1',
      'opensrf.settings.host_config.get "nosuchhost"',
      "opensrf.settings.host_config.get",
      "opensrf.settings.default_config.get",
      'opensrf.settings.xpath.get "/opensrf/default/apps/opensrf.slooooooow/unix_config"',
      'opensrf.settings.xpath.get "/opensrf/default/apps/opensrf.dbmath/unix_config/*"',
      'opensrf.settings.xpath.get "//appname"',
      'opensrf.settings.xpath.get "/opensrf/hosts/localhost/activeapps"',
      'opensrf.settings.xpath.get "/opensrf/nothing/here"',
      'opensrf.settings.xpath.get.raw "/opensrf/default/apps/opensrf.math/keepalive"',
    ].map((c) => `request opensrf.settings ${c}`);
    const [a, b] = await Promise.all([ours.srfsh(calls), perl.srfsh(calls)]);
    // Each stack has its own directory in <dirs>; Perl's hash order is its own.
    const norm = (run: typeof a, stack: OpenSrfStack) =>
      JSON.parse(JSON.stringify(run.replies).split(stack.dir).join("DIR"));
    expect(a.replies).toHaveLength(calls.length);
    expect(norm(a, ours), a.stdout).toEqual(norm(b, perl));
    expect(a.replies.every((r) => r.completed && r.exceptions.length === 0 && r.data.length === 1)).toBe(true);
  });

  test("the real Perl client's SettingsClient reads the same values from ours as from Perl", async () => {
    const script = `
      use OpenSRF::Utils::SettingsClient;
      my $c = OpenSRF::Utils::SettingsClient->new;
      print encode_json([
        $c->config_value("apps", "opensrf.slooooooow", "unix_config", "min_children"),
        $c->config_value("apps", "opensrf.dbmath", "language"),
        $c->config_value("apps", "opensrf.math", "keepalive"),
      ]), "\\n";
    `;
    const [a, b] = await Promise.all([ours.perl(script), perl.perl(script)]);
    expect(a.stdout.trim(), a.stderr).toBe(`[${DRONES},"c",3]`);
    expect(b.stdout).toBe(a.stdout);
  });
});

async function startOurs(): Promise<OpenSrfStack> {
  const stack = await createOpenSrfStack({ services: [SLOW] });
  try {
    const file = join(stack.dir, "ours.opensrf.xml");
    writeFileSync(file, ourSettings(readFileSync(stack.paths.settings, "utf8")));
    // osrf_control reads the file named by <settings_config> itself; without it, a Perl
    // service gets everything from opensrf.settings, as on a host that has no opensrf.xml.
    const core = join(stack.dir, "opensrf_core.bus-settings.xml");
    const coreXml = readFileSync(stack.paths.core, "utf8").replace(/\s*<settings_config>[^<]*<\/settings_config>/, "");
    if (coreXml.includes("settings_config")) throw new Error("could not drop <settings_config>");
    writeFileSync(core, coreXml);
    await stack.startRouter();
    await stack.startPreforkSettings(file);
    await stack.startCServices(["opensrf.dbmath", "opensrf.math"]);
    await stack.startPerlService(SLOW.name, { config: core });
    return stack;
  } catch (err) {
    await stack.stop().catch(() => {});
    throw err;
  }
}

async function startPerl(): Promise<OpenSrfStack> {
  const stack = await createOpenSrfStack({ services: [SLOW] });
  try {
    writeFileSync(stack.paths.settings, ourSettings(readFileSync(stack.paths.settings, "utf8")));
    await stack.startRouter();
    await stack.startPerlSettings();
    return stack;
  } catch (err) {
    await stack.stop().catch(() => {});
    throw err;
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}
