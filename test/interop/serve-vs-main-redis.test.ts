/**
 * `osrf-prefork serve` on the Redis bus behind the REAL C router of OpenSRF main, answering
 * the REAL main srfsh and the REAL main Perl client, compared with the REAL C opensrf.math on
 * the same bus (main built from its tarball; a private redis-server with its ACL accounts).
 *
 * Each srfsh case runs the same commands against C's opensrf.math and then ours
 * (examples/math.ts as opensrf.tsmath) and compares what srfsh printed, the bodies it
 * received (as its C library logs them at loglevel 4), their senders and what srfsh sent
 * (to the service through the router, or straight to the session's drone) — service name,
 * pids and random parts of addresses masked. Each Perl case compares what the client
 * returned.
 *
 * Without the main tarball this file prints one "skipped" line (set OPENSRF_MAIN_SRC); with
 * CI set it fails.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ensurePeer, peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import type { OpenSrfStack } from "../../devkit/opensrf/stack.ts";
import { C, cJson, maskAddress, maskService, OURS, partialPieces, shapeOf, startMathStack } from "./vs-c.ts";

const HAVE_PEER = peerAvailableForTests("test/interop/serve-vs-main-redis.test.ts", "main");

/** What one service gave srfsh for a list of commands. */
interface Side {
  printed: string;
  bodies: string[];
  senders: string[];
  sent: Array<{ to: string; body: string }>;
}

let stack: OpenSrfStack;

/** Runs `commands(service)` in one real srfsh with its wire log on; what it printed, got and sent. */
async function srfshSide(service: string, commands: (service: string) => string[]): Promise<Side> {
  const run = await stack.srfsh(commands(service), { wire: true, timeoutMs: 45_000 });
  if (run.timedOut) throw new Error(`srfsh timed out:\n${run.stdout.slice(-2000)}\n${stack.logTail(40)}`);
  const wire = run.wire!;
  return {
    printed: maskService(run.stdout, service).replace(
      /^Request Time in seconds: \d+\.\d+$/gm,
      "Request Time in seconds: <t>",
    ),
    bodies: wire.received.map((m) => maskService(m.body, service)),
    senders: wire.received.map((m) => maskAddress(m.from)),
    sent: wire.sent
      .filter((m) => m.to === `opensrf:service:_:_:${service}` || m.to.startsWith("opensrf:client:"))
      .map((m) => ({ to: maskAddress(maskService(m.to, service)), body: maskService(m.body, service) })),
  };
}

/** The same srfsh commands against C's math and ours; both sides, after checking C answered at all. */
async function srfshBoth(commands: (service: string) => string[]): Promise<{ c: Side; ours: Side }> {
  const c = await srfshSide(C, commands);
  const ours = await srfshSide(OURS, commands);
  expect(c.bodies.length).toBeGreaterThan(0);
  expect(c.sent.length).toBeGreaterThan(0);
  return { c, ours };
}

/** Runs a Perl case (a sub body getting `$svc`, returning a value) for C's math and for ours. */
async function perlBoth(perlCase: string): Promise<{ c: unknown; ours: unknown }> {
  const script = `
use utf8;
my $J = JSON::XS->new->canonical->ascii->allow_nonref;
my $case = sub {
  my $svc = shift;
${perlCase}
};
my %out;
for my $side (["c", "${C}"], ["ours", "${OURS}"]) {
  my $v = eval { $case->($side->[1]) };
  $out{$side->[0]} = $@ ? { died => "$@" } : $v;
}
print $J->encode(\\%out), "\\n";
`;
  const run = await stack.perl(script, { timeoutMs: 60_000 });
  const line = run.stdout.trim().split("\n").pop() ?? "";
  if (run.code !== 0 || !line.startsWith("{"))
    throw new Error(`perl failed (${run.code}):\n${run.stdout}\n${run.stderr}`);
  const out = JSON.parse(line) as { c: unknown; ours: unknown };
  const mask = (v: unknown) =>
    JSON.parse(maskService(maskService(JSON.stringify(v), C), OURS).replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/g, "<ts>"));
  return { c: mask(out.c), ours: mask(out.ours) };
}

describe.skipIf(!HAVE_PEER)(
  "osrf-prefork serve on Redis vs the real C opensrf.math, behind the real main router",
  () => {
    beforeAll(async () => {
      // A cold cache means apt plus a full autotools build: minutes, once per machine.
      await ensurePeer("main");
      stack = await startMathStack("main");
    }, 15 * 60_000);

    afterAll(async () => {
      await stack?.stop();
    }, 60_000);

    test("srfsh, stateless add 2, 2: same output, same body (RESULT and 205 in one element), from a drone's inbox", async () => {
      const { c, ours } = await srfshBoth((s) => [`request ${s} add 2, 2`]);
      expect(c.printed).toContain("\nReceived Data: 4\n");
      expect(shapeOf(c.bodies)).toEqual([["osrfResult", "osrfConnectStatus"]]);
      expect(c.senders[0]).toMatch(/^opensrf:client:opensrf:localhost:[^:]+:<pid>:<rand>$/);
      expect(c.sent.map((m) => m.to)).toEqual(["opensrf:service:_:_:S"]);
      expect(ours).toEqual(c);
    });

    test('srfsh, opensrf.system.echo "a", 1, 2.5, true, null, [1,2], {"k":"v"}: the same bodies', async () => {
      const { c, ours } = await srfshBoth((s) => [
        `request ${s} opensrf.system.echo "a", 1, 2.5, true, null, [1,2], {"k":"v"}`,
      ]);
      expect(shapeOf(c.bodies)).toEqual([[...Array(7).fill("osrfResult"), "osrfConnectStatus"]]);
      expect(ours).toEqual(c);
    });

    test("srfsh, unicode both ways (raw UTF-8, \\u escapes, an astral emoji, <&>'\"): the same bodies and output", async () => {
      const { c, ours } = await srfshBoth((s) => [
        `request ${s} opensrf.system.echo "héllo ☃ 日本語", "\\u00e9\\u2603", "🎉 <&>'\\""`,
      ]);
      expect(c.printed).toContain("Received Data:");
      expect(ours).toEqual(c);
    });

    test("srfsh, an unknown method and too few params: C's 404 texts, the service's own name", async () => {
      const { c, ours } = await srfshBoth((s) => [`request ${s} nosuch`, `request ${s} add 1`]);
      expect(c.printed).toContain("Status: Method [nosuch] not found for service S");
      expect(c.printed).toContain("Status: Not enough params for method add / service S");
      expect(ours).toEqual(c);
    });

    test("srfsh, a CONNECT session (open / request / close): CONNECT through the router, the rest to the drone's inbox", async () => {
      const { c, ours } = await srfshBoth((s) => [`open ${s}`, `request ${s} add 3, 4`, `close ${s}`]);
      expect(c.printed).toContain("\nReceived Data: 7\n");
      const drone = c.senders[0]!;
      expect(c.sent.map((m) => m.to)).toEqual(["opensrf:service:_:_:S", drone, drone]);
      expect(ours).toEqual(c);
    });

    test("srfsh, a 100 KB result (inside a session): partials from both, reassembled to the same text", async () => {
      // Inside a session the request goes straight to the drone: C's prefork reads a stateless
      // request over ~64 KB from its listener's pipe non-blocking after the first 1 KB and
      // sometimes never answers it (also in 3.3); that is C's bug, not what this compares.
      const big = "0123456789abcdé".repeat(7_000);
      const { c, ours } = await srfshBoth((s) => [
        `open ${s}`,
        `request ${s} opensrf.system.echo "${big}"`,
        `close ${s}`,
      ]);
      // Booleans: a failure should not print 100 KB.
      for (const side of [c, ours]) {
        // The pieces as srfsh's library logs them: C's JSON encoder escapes non-ASCII.
        expect(partialPieces(side.bodies).join("") === cJson(big)).toBe(true);
        expect(side.printed.includes(`Received Data: ${cJson(big)}`)).toBe(true);
        expect(shapeOf(side.bodies).flat()).toContain("osrfResultPartialComplete");
      }
      expect(ours.printed === c.printed).toBe(true);
      expect(ours.sent.map((m) => m.to)).toEqual(c.sent.map((m) => m.to));
    });

    test("the Perl client: stateless, a session, unicode, and the exceptions, as with C's math", async () => {
      const { c, ours } = await perlBoth(`
  my $ses = OpenSRF::AppSession->create($svc);
  my @out = ($ses->request("add", 2, 2)->gather(1));
  push @out, $ses->request("opensrf.system.echo", "héllo ☃ 🎉 <&>")->gather(1);
  for my $m (["nosuch"], ["add", 1]) {
    my $req = $ses->request(@$m);
    $req->wait_complete(10);
    my $f = $req->failed;
    push @out, $f ? [ref($f), $f->statusCode, $f->status] : "no failure";
    $req->finish;
  }
  $ses->connect or die "no connect";
  push @out, $ses->request("add", 3, 4)->gather(1);
  $ses->disconnect;
  $ses->kill_me;
  return \\@out;
`);
      expect(c).toEqual([
        4,
        "héllo ☃ 🎉 <&>",
        ["OpenSRF::DomainObject::oilsMethodException", "404", "Method [nosuch] not found for service S"],
        ["OpenSRF::DomainObject::oilsMethodException", "404", "Not enough params for method add / service S"],
        7,
      ]);
      expect(ours).toEqual(c);
    });
  },
);
