/**
 * `osrf-prefork settings` on Redis in place of the real Perl opensrf.settings of OpenSRF main,
 * behind the real C router: the REAL C opensrf.dbmath and opensrf.math start with the settings
 * it serves (opensrf-c asks host_config.get at start) and answer the real srfsh and the real
 * Perl client (which asks opensrf.settings too). A second stack runs the real Perl settings
 * server on the same kind of files, to compare the answers, only each stack's private
 * directory masked.
 *
 * Without the main tarball this file prints one "skipped" line (set OPENSRF_MAIN_SRC); with CI
 * set it fails.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ensurePeer, peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import { type OpenSrfStack, startOpenSrfStack, startTogether } from "../../devkit/opensrf/stack.ts";

const HAVE_PEER = peerAvailableForTests("test/interop/settings-vs-main-redis.test.ts", "main");

describe.skipIf(!HAVE_PEER)("osrf-prefork settings on Redis, serving the real main C services and Perl client", () => {
  /** C router, our settings server, real C services. */
  let ours: OpenSrfStack;
  /** C router, the real Perl settings server, real C services. */
  let theirs: OpenSrfStack;

  beforeAll(async () => {
    // A cold cache means apt plus a full autotools build: minutes, once per machine.
    await ensurePeer("main");
    [ours, theirs] = await startTogether([
      startOpenSrfStack({ release: "main", settings: "prefork" }),
      startOpenSrfStack({ release: "main" }),
    ]);
  }, 15 * 60_000);

  afterAll(async () => {
    await Promise.all([ours?.stop(), theirs?.stop()]);
  }, 60_000);

  /** srfsh's data for each command, with the stack's private dir masked. */
  async function answers(stack: OpenSrfStack, commands: string[]): Promise<unknown[][]> {
    const run = await stack.srfsh(commands);
    expect(run.replies.length, run.stdout + run.stderr).toBe(commands.length);
    return JSON.parse(
      JSON.stringify(run.replies.map((r) => r.data))
        .split(stack.dir)
        .join("<dir>"),
    );
  }

  test("srfsh gets from ours what it gets from the Perl server: host_config.get and xpath.get", async () => {
    const commands = [
      'request opensrf.settings opensrf.settings.host_config.get "localhost"',
      'request opensrf.settings opensrf.settings.xpath.get "/opensrf/default/apps/opensrf.math/unix_config/max_children"',
      'request opensrf.settings opensrf.settings.xpath.get "/opensrf/default/apps/opensrf.nosuch"',
    ];
    const [a, b] = await Promise.all([answers(ours, commands), answers(theirs, commands)]);
    expect(a[1]).toEqual([[3]]);
    expect(a).toEqual(b);
  });

  test("the real C services started with our settings answer srfsh and the Perl client", async () => {
    expect(ours.processes().filter((p) => p.role === "listener" && p.impl === "opensrf").length).toBeGreaterThanOrEqual(
      2,
    );
    const run = await ours.srfsh(["request opensrf.math add 2, 2", "request opensrf.dbmath mult 6, 7"]);
    expect(
      run.replies.map((r) => r.data),
      run.stdout,
    ).toEqual([[4], [42]]);
    const perl = await ours.perl(`
      my $ses = OpenSRF::AppSession->create("opensrf.math");
      print encode_json([$ses->request("add", 2, 3)->gather(1)]), "\\n";
    `);
    expect(perl.stdout.trim(), perl.stderr).toBe("[5]");
  });
});
