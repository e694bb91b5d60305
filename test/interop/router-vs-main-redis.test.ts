/**
 * `osrf-prefork router` on Redis in place of the real C opensrf_router of OpenSRF main, with
 * the REAL main listeners registered with it — C opensrf.math and opensrf.dbmath (opensrf-c),
 * Perl opensrf.settings (osrf_control) — and the real main srfsh and Perl client talking
 * through it. What srfsh prints is compared with a second stack that runs the real C router
 * with the same real listeners.
 *
 * Without the main tarball this file prints one "skipped" line (set OPENSRF_MAIN_SRC); with
 * CI set it fails.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ensurePeer, peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import { descendants, procRef, signalRef, waitGone } from "../../devkit/opensrf/procs.ts";
import { type OpenSrfStack, startOpenSrfStack, startTogether } from "../../devkit/opensrf/stack.ts";
import type { CliProcess } from "../../devkit/processes.ts";
import { waitFor } from "./vs-c.ts";

const HAVE_PEER = peerAvailableForTests("test/interop/router-vs-main-redis.test.ts", "main");

/** Forwards per queue of a class, as our router counts them. */
async function stats(stack: OpenSrfStack, service: string): Promise<Record<string, number>> {
  const run = await stack.srfsh(`request router opensrf.router.info.stats.class "${service}"`);
  return run.replies[0]?.data[0] as Record<string, number>;
}

/** srfsh's output from the first prompt on, with its timings masked. */
function printed(stdout: string): string {
  return stdout
    .slice(stdout.indexOf("srfsh# "))
    .replace(/^Request Time in seconds: \d+\.\d+$/gm, "Request Time in seconds: <t>");
}

describe.skipIf(!HAVE_PEER)("osrf-prefork router on Redis with the real C and Perl main listeners registered", () => {
  /** Our router, real listeners. */
  let ours: OpenSrfStack;
  /** The real C router with the same real listeners, for comparison. */
  let theirs: OpenSrfStack;
  let router: CliProcess;

  beforeAll(async () => {
    // A cold cache means apt plus a full autotools build: minutes, once per machine.
    await ensurePeer("main");
    [ours, theirs] = await startTogether([
      startOpenSrfStack({ release: "main", router: "prefork" }),
      startOpenSrfStack({ release: "main" }),
    ]);
    router = ours.preforkRouter()!;
  }, 15 * 60_000);

  afterAll(async () => {
    await Promise.all([ours?.stop(), theirs?.stop()]);
  }, 60_000);

  test("real srfsh through ours: stateless (math asks dbmath through ours too), and a CONNECT session", async () => {
    const queue = "opensrf:service:opensrf:localhost:opensrf.math";
    const before = (await stats(ours, "opensrf.math"))[queue]!;
    const run = await ours.srfsh([
      "request opensrf.math add 2, 2",
      "open opensrf.math",
      "request opensrf.math add 3, 3",
      "request opensrf.math mult 3, 4",
      "close opensrf.math",
    ]);
    expect(
      run.replies.map((r) => r.data),
      run.stdout + run.stderr,
    ).toEqual([[4], [6], [12]]);
    // Through the router: the stateless request and the CONNECT; the rest went to the drone.
    expect((await stats(ours, "opensrf.math"))[queue]).toBe(before + 2);
  });

  test("the real Perl client through ours: stateless, and connect / request / disconnect with a real C drone", async () => {
    const perl = await ours.perl(`
      my $one = OpenSRF::AppSession->create("opensrf.math")->request("add", 2, 2)->gather(1);
      my $ses = OpenSRF::AppSession->create("opensrf.math");
      $ses->connect or die "connect failed";
      my @r = ($ses->request("add", 5, 5)->gather(1), $ses->request("sub", 9, 4)->gather(1));
      my $remote = $ses->remote_id;
      $ses->disconnect;
      print encode_json([$one, @r, $remote]), "\\n";
    `);
    expect(perl.code, perl.stderr).toBe(0);
    const [one, ten, five, remote] = JSON.parse(perl.stdout) as [number, number, number, string];
    expect([one, ten, five]).toEqual([4, 10, 5]);
    expect(remote).toMatch(/^opensrf:client:opensrf:localhost:[^:]+:\d+:[0-9a-f]+$/);
  });

  test("srfsh gets from ours what it gets from the C router: class list, results, the unknown-service 404", async () => {
    const script = [
      "request router opensrf.router.info.class.list",
      "request opensrf.math add 2, 2",
      'request opensrf.dbmath opensrf.system.echo "héllo ☃"',
      "request opensrf.nosuchservice opensrf.system.echo 1",
      "open opensrf.dbmath",
      "request opensrf.dbmath add 40, 2",
      "close opensrf.dbmath",
    ];
    const [a, b] = await Promise.all([ours.srfsh(script), theirs.srfsh(script)]);
    expect(printed(a.stdout)).toBe(printed(b.stdout));
    expect(a.replies[0]?.data[0]).toEqual(["opensrf.settings", "opensrf.dbmath", "opensrf.math"]);
    expect(a.replies[3]).toMatchObject({
      exceptions: [{ name: "osrfServiceException", status: "Service Not Found", code: 404 }],
    });
    expect(a.replies[4]?.data).toEqual([42]);
  });

  test("the stats name each class's queue; two real C listeners of one account share it", async () => {
    const first = ours.listenerPid("opensrf.dbmath");
    await ours.startCService("opensrf.dbmath");
    await waitFor(
      async () => router.output.split("Registering class opensrf.dbmath: adding").length - 1 >= 2,
      "the second dbmath listener to register with ours",
    );
    expect(Object.keys(await stats(ours, "opensrf.dbmath"))).toEqual([
      "opensrf:service:opensrf:localhost:opensrf.dbmath",
    ]);
    // One SIGKILLed with its drones (no unregister): the other reads the same queue, so
    // nothing waits for the dead one.
    const ref = procRef(first)!;
    const tree = [ref, ...descendants([ref])];
    for (const r of tree) signalRef(r, "SIGKILL");
    await waitGone(tree, 5000);
    const run = await ours.srfsh(Array.from({ length: 6 }, (_, i) => `request opensrf.dbmath add ${i}, 1`));
    expect(
      run.replies.map((r) => r.data),
      run.stdout,
    ).toEqual([[1], [2], [3], [4], [5], [6]]);
  }, 90_000);

  test("SIGTERM to a real C listener: it unregisters from ours, the class goes (srfsh gets the 404); started again, it serves", async () => {
    ours.signal("opensrf.math", "SIGTERM");
    await waitFor(async () => !(await ours.classList()).includes("opensrf.math"), "opensrf.math to unregister");
    expect(router.output).toMatch(/Unregistering opensrf:client:opensrf:localhost:\S+ from class opensrf\.math/);
    const gone = await ours.srfsh("request opensrf.math add 1, 1");
    expect(gone.replies[0]?.exceptions).toEqual([
      { name: "osrfServiceException", status: "Service Not Found", code: 404 },
    ]);
    await ours.startCService("opensrf.math");
    const back = await ours.srfsh("request opensrf.math add 1, 1");
    expect(back.replies[0]?.data).toEqual([2]);
  }, 90_000);

  test("SIGTERM to the real Perl listener: it unregisters from ours", async () => {
    ours.signal("opensrf.settings", "SIGTERM");
    await waitFor(async () => !(await ours.classList()).includes("opensrf.settings"), "opensrf.settings to unregister");
    expect(router.output).toMatch(/Unregistering opensrf:client:opensrf:localhost:\S+ from class opensrf\.settings/);
  }, 60_000);
});
