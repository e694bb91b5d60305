/**
 * A TypeScript service under `osrf-prefork serve`, behind the REAL C router, whose handlers
 * call the REAL C opensrf.dbmath / opensrf.math and the REAL Perl opensrf.settings over the
 * bus (`ctx.call`, `ctx.client.session`), asked by real srfsh and the real Perl client.
 * The service is test/fixtures/interop/relay.ts. On both: OpenSRF 3.3 (XMPP) and OpenSRF
 * main (Redis), the same module.
 *
 * Without a tarball its half prints one "skipped" line (set OPENSRF_SRC / OPENSRF_MAIN_SRC);
 * with CI set it fails.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ensurePeer, type PeerRelease, peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import { type OpenSrfStack, startOpenSrfStack } from "../../devkit/opensrf/stack.ts";
import type { CliProcess } from "../../devkit/processes.ts";

const RELAY = resolve(import.meta.dir, "../fixtures/interop/relay.ts");
/** How a session's drone is addressed: an XMPP resource naming the service, a Redis inbox. */
const DRONE: Record<PeerRelease, RegExp> = {
  "3.3": /^opensrf@localhost\/opensrf\.math_drone_/,
  main: /^opensrf:client:opensrf:localhost:[^:]+:\d+:[0-9a-f]+$/,
};

for (const release of ["3.3", "main"] as const) {
  const HAVE_PEER = peerAvailableForTests("test/interop/ts-calls-real.test.ts", release);
  describe.skipIf(!HAVE_PEER)(`OpenSRF ${release}`, () => callsReal(release));
}

function callsReal(release: PeerRelease): void {
  describe("a TypeScript method calling the real C and Perl services from its handler", () => {
    let stack: OpenSrfStack;
    let relay: CliProcess;

    beforeAll(async () => {
      // A cold cache means apt plus a full autotools build: minutes, once per machine.
      await ensurePeer(release);
      stack = await startOpenSrfStack({
        release,
        services: [
          {
            name: "opensrf.tsrelay",
            language: "typescript",
            implementation: RELAY,
            unixConfig: { minChildren: 1, maxChildren: 2, minSpareChildren: 1, maxSpareChildren: 1 },
          },
        ],
      });
      relay = await stack.servePrefork("opensrf.tsrelay", RELAY);
    }, 15 * 60_000);

    afterAll(async () => {
      await stack?.stop();
    }, 60_000);

    test("sumvia: our handler asks the real C opensrf.dbmath; srfsh gets what dbmath answers it directly", async () => {
      const run = await stack.srfsh(["request opensrf.tsrelay sumvia 2, 3", "request opensrf.dbmath add 2, 3"]);
      expect(
        run.replies.map((r) => r.data),
        run.stdout + run.stderr,
      ).toEqual([[5], [5]]);
    });

    test("chainvia: ours → real C opensrf.math → real C opensrf.dbmath, one answer back to srfsh", async () => {
      const run = await stack.srfsh("request opensrf.tsrelay chainvia 40, 2");
      expect(run.replies[0], run.stdout).toEqual({ data: [42], exceptions: [], completed: true, noData: false });
    });

    test("echovia: each RESULT of the real C service streams on as one of ours", async () => {
      const run = await stack.srfsh('request opensrf.tsrelay echovia "a", 1, {"k":[null]}');
      expect(run.replies[0]?.data, run.stdout).toEqual(["a", 1, { k: [null] }]);
    });

    test("hostsetting / hostconfig: the real Perl opensrf.settings answers our handler as it answers srfsh", async () => {
      const xpath = '"/opensrf/default/apps/opensrf.dbmath/unix_config/max_children"';
      const run = await stack.srfsh([
        `request opensrf.tsrelay hostsetting ${xpath}`,
        `request opensrf.settings opensrf.settings.xpath.get ${xpath}`,
        'request opensrf.tsrelay hostconfig "localhost"',
      ]);
      const [via, direct, cfg] = run.replies.map((r) => r.data);
      expect(via, run.stdout).toEqual([[3]]);
      expect(via).toEqual(direct);
      expect(cfg).toEqual([
        {
          activeapps: { appname: ["opensrf.settings", "opensrf.math", "opensrf.dbmath", "opensrf.tsrelay"] },
          dbmath: expect.objectContaining({ min_children: 1, max_children: 3, max_requests: 1000 }),
        },
      ]);
    });

    test("failvia: the real C service's 404 reaches our handler as a RequestError with its code and text", async () => {
      const run = await stack.srfsh([
        'request opensrf.tsrelay failvia "nosuch"',
        'request opensrf.tsrelay failvia "add"',
      ]);
      expect(
        run.replies.map((r) => r.data),
        run.stdout,
      ).toEqual([
        [{ name: "RequestError", statusCode: 404, statusText: "Method [nosuch] not found for service opensrf.dbmath" }],
        [{ results: [3] }],
      ]);
    });

    test("sessionvia: a CONNECT session from inside our handler, pinned to one real C drone", async () => {
      const run = await stack.srfsh("request opensrf.tsrelay sessionvia 2, 3");
      expect(run.replies[0]?.data, run.stdout).toEqual([
        { sum: 5, product: 6, remote: expect.stringMatching(DRONE[release]) },
      ]);
    });

    test("the real Perl client calls ours, which calls the real C service: Perl → TypeScript → C", async () => {
      const perl = await stack.perl(`
      my $ses = OpenSRF::AppSession->create("opensrf.tsrelay");
      print encode_json([$ses->request("sumvia", 20, 22)->gather(1), $ses->request("chainvia", 1, 1)->gather(1)]), "\\n";
    `);
      expect(perl.stdout.trim(), perl.stderr).toBe("[42,2]");
    });

    test("the caller's xid goes on to the real C service: dbmath logs srfsh's xid for our nested call", async () => {
      const run = await stack.srfsh("request opensrf.tsrelay sumvia 4711, 1");
      expect(run.replies[0]?.data).toEqual([4712]);
      // Our drone's activity line and C's "CALL:" line, each with the xid in its header.
      const ours = /:([0-9]+)\] Running opensrf\.tsrelay sumvia \[ ?4711, ?1 ?\]/.exec(relay.output)?.[1];
      const log = readFileSync(join(stack.paths.logDir, "osrfsys.log"), "utf8");
      const theirs = /:([0-9]+)\] CALL: opensrf\.dbmath add 4711, ?1/.exec(log)?.[1];
      expect(ours, relay.output.slice(-2000)).toMatch(/^[0-9]+$/);
      expect(theirs).toBe(ours);
    });
  });
}
