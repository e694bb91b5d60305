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
import type { ScriptStep } from "../../devkit/opensrf/clients.ts";
import { ensurePeer, peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import type { OpenSrfStack } from "../../devkit/opensrf/stack.ts";
import {
  C,
  cJson,
  isKeepaliveTimeout,
  maskAddress,
  maskService,
  OURS,
  partialPieces,
  shapeOf,
  startMathStack,
  untilInboxHolds,
} from "./vs-c.ts";

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
async function srfshSide(service: string, commands: (service: string) => ScriptStep[]): Promise<Side> {
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
async function srfshBoth(commands: (service: string) => ScriptStep[]): Promise<{ c: Side; ours: Side }> {
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

    test("srfsh, a session left idle past keepalive: the drone's 408 from its inbox, then srfsh connects again", async () => {
      // srfsh blocks on its script until the drone's 408 is in its inbox: it reads that
      // before sending the next request, marks the session disconnected and sends anew.
      const { c, ours } = await srfshBoth((s) => [
        `open ${s}`,
        ({ pid }) => untilInboxHolds(stack, pid, isKeepaliveTimeout, "the drone's 408"),
        `request ${s} add 3, 4`,
        `close ${s}`,
      ]);
      expect(c.printed).toContain("\nReceived Data: 7\n");
      const timeout = c.bodies.findIndex(isKeepaliveTimeout);
      expect(timeout).toBe(1);
      expect(JSON.parse(c.bodies[timeout]!)).toEqual([
        {
          __c: "osrfMessage",
          __p: {
            threadTrace: "0",
            locale: "en-US",
            api_level: 1,
            type: "STATUS",
            payload: { __c: "osrfConnectStatus", __p: { status: "Disconnected on timeout", statusCode: "408" } },
          },
        },
      ]);
      // From the inbox that answered the CONNECT.
      expect(c.senders[timeout]).toBe(c.senders[0]);
      expect(ours).toEqual(c);
    });

    test("the Perl client, a session left idle past keepalive: it takes the drone's 408, connects again, and is answered", async () => {
      const side = async (service: string): Promise<unknown> => {
        const run = await stack.perl(
          `
  my $ses = OpenSRF::AppSession->create("${service}");
  $ses->connect or die "no connect";
  my @out = ($ses->state == $ses->CONNECTED ? "connected" : "not connected");
  <STDIN>;  # until the test has seen the drone's 408 in our inbox
  $ses->queue_wait(0);  # Perl reads it here, and connects again
  push @out, ($ses->state == $ses->CONNECTED ? "connected again" : "state " . $ses->state);
  push @out, ($ses->remote_id =~ /^opensrf:client:/ ? "a drone's inbox" : $ses->remote_id);
  push @out, $ses->request("add", 3, 4)->gather(1);
  $ses->disconnect;
  print encode_json(\\@out), "\\n";
`,
          {
            timeoutMs: 60_000,
            stdin: [({ pid }) => untilInboxHolds(stack, pid, isKeepaliveTimeout, "the drone's 408"), "go"],
          },
        );
        if (run.code !== 0 || run.timedOut) throw new Error(`perl failed (${run.code}):\n${run.stdout}\n${run.stderr}`);
        return JSON.parse(run.stdout.trim().split("\n").pop() ?? "null");
      };
      const c = await side(C);
      expect(c).toEqual(["connected", "connected again", "a drone's inbox", 7]);
      expect(await side(OURS)).toEqual(c);
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

    test("srfsh, a 100 KB stateless echo to ours (through the router and the listener): partials, whole", async () => {
      // Ours only: C's listener may never hand a stateless request this big to its drone (above).
      const big = "0123456789abcdé".repeat(7_000);
      const ours = await srfshSide(OURS, (s) => [`request ${s} opensrf.system.echo "${big}"`]);
      expect(ours.sent.map((m) => m.to)).toEqual(["opensrf:service:_:_:S"]);
      expect(partialPieces(ours.bodies).join("") === cJson(big)).toBe(true);
      expect(ours.printed.includes(`Received Data: ${cJson(big)}`)).toBe(true);
    });

    test("the Perl client: stateless, several results, a session, unicode, 100 KB, and the exceptions, as with C's math", async () => {
      const { c, ours } = await perlBoth(`
  my $ses = OpenSRF::AppSession->create($svc);
  my @out = ($ses->request("add", 2, 2)->gather(1));
  push @out, $ses->request("opensrf.system.echo", "héllo ☃ 🎉 <&>")->gather(1);
  my $many = $ses->request("opensrf.system.echo", "a", 1, [2, {k => undef}]);
  my @each;
  while (my $r = $many->recv(timeout => 10)) { push @each, $r->content }
  $many->finish;
  push @out, \\@each;
  for my $m (["nosuch"], ["add", 1]) {
    my $req = $ses->request(@$m);
    $req->wait_complete(10);
    my $f = $req->failed;
    push @out, $f ? [ref($f), $f->statusCode, $f->status] : "no failure";
    $req->finish;
  }
  $ses->connect or die "no connect";
  push @out, $ses->request("add", 3, 4)->gather(1);
  # In the session, as srfsh's 100 KB case: C's listener may drop a stateless one this big.
  my $big = "0123456789abcdé" x 7000;
  my $echo = $ses->request("opensrf.system.echo", $big)->gather(1);
  push @out, ($echo eq $big ? "100 KB whole" : "100 KB broken: " . length($echo // ""));
  $ses->disconnect;
  $ses->kill_me;
  return \\@out;
`);
      expect(c).toEqual([
        4,
        "héllo ☃ 🎉 <&>",
        ["a", 1, [2, { k: null }]],
        ["OpenSRF::DomainObject::oilsMethodException", "404", "Method [nosuch] not found for service S"],
        ["OpenSRF::DomainObject::oilsMethodException", "404", "Not enough params for method add / service S"],
        7,
        "100 KB whole",
      ]);
      expect(ours).toEqual(c);
    });
  },
);
