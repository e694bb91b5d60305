/**
 * The same `examples/*.ts` modules, unchanged, under `osrf-prefork serve` on both buses in one
 * run: behind the REAL C router of OpenSRF 3.3 (ejabberd) and of OpenSRF main (redis-server),
 * each asked the same calls by the REAL srfsh and the REAL Perl client of its release.
 *
 * What srfsh printed and the bodies it received (as its C library logs them) must be the same
 * on both buses, and so must what the Perl client returned; only the callers' session ids in
 * error texts are masked. examples/math.ts has the methods of
 * C's opensrf.math: those answers are also compared with the real C service's on each bus, with
 * only the service name masked.
 *
 * Without both tarballs this file prints one "skipped" line (set OPENSRF_SRC and
 * OPENSRF_MAIN_SRC); with CI set it fails.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { ensurePeer, type PeerRelease, peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import { type OpenSrfStack, startOpenSrfStack, startTogether } from "../../devkit/opensrf/stack.ts";
import { maskService } from "./vs-c.ts";

const FILE = "test/interop/examples-both-buses.test.ts";
const HAVE_PEERS = peerAvailableForTests(FILE, "3.3") && peerAvailableForTests(FILE, "main");
const EXAMPLES = resolve(import.meta.dir, "../../examples");
const RELEASES = ["3.3", "main"] as const;

/** The calls each example module gets, on both buses. */
interface ExampleCalls {
  /** The name it is served under (the modules' own names are taken by the C services). */
  service: string;
  /** srfsh script lines for service `s`. */
  srfsh: (s: string) => string[];
  /** A Perl sub body getting `$svc`, returning what the test compares. */
  perl: string;
}

/** `$fail->($req)`: a request's failure as [class, code, text] (its caller's view of the error). */
const PERL_FAIL = `
my $fail = sub {
  my $req = shift;
  $req->wait_complete(10);
  my $f = $req->failed;
  my $out = $f ? [ref($f), $f->statusCode, $f->status] : "no failure";
  $req->finish;
  return $out;
};`;

const CALLS: Record<string, ExampleCalls> = {
  "math.ts": {
    service: "example.math",
    srfsh: (s) => [
      `request ${s} add 2, 2`,
      `request ${s} sub 10, "4"`,
      `request ${s} mult 6, 7`,
      `request ${s} div 7, 2`,
      `request ${s} div 1, 0`,
      `request ${s} add 1`,
      `request ${s} nosuch`,
      `request ${s} opensrf.system.echo "héllo ☃ 🎉", 1, [null]`,
    ],
    perl: `
  my $ses = OpenSRF::AppSession->create($svc);
  return [
    $ses->request("add", 2, 2)->gather(1),
    $ses->request("div", 7, 2)->gather(1),
    $fail->($ses->request("div", 1, 0)),
    $fail->($ses->request("nosuch")),
  ];`,
  },
  "cart.ts": {
    service: "example.cart",
    srfsh: (s) => [
      `request ${s} total`,
      `open ${s}`,
      `request ${s} add_item "apple", 0.5, 3`,
      `request ${s} add_item "pear", 0.75, 2`,
      `request ${s} add_item "", 1`,
      `request ${s} list`,
      `request ${s} total`,
      `close ${s}`,
    ],
    perl: `
  my $ses = OpenSRF::AppSession->create($svc);
  my @out = ($fail->($ses->request("total")));
  $ses->connect or die "no connect";
  push @out, $ses->request("add_item", "apple", 0.5, 3)->gather(1);
  push @out, $ses->request("add_item", "pear", 0.75, 2)->gather(1);
  push @out, $ses->request("list")->gather(1), $ses->request("total")->gather(1);
  $ses->disconnect;
  return \\@out;`,
  },
  "stream.ts": {
    service: "example.stream",
    srfsh: (s) => [
      `request ${s} count 5`,
      `request ${s} count 3, 5`,
      `request ${s} count -1`,
      `request ${s} big 60000`,
      `request ${s} slow 10`,
      `request ${s} fail`,
      `request ${s} bad_json "cycle"`,
    ],
    perl: `
  my $ses = OpenSRF::AppSession->create($svc);
  my $req = $ses->request("count", 4);
  my @got;
  while (my $r = $req->recv(timeout => 10)) { push @got, $r->content }
  $req->finish;
  return [\\@got, length($ses->request("big", 60000)->gather(1)), $fail->($ses->request("fail"))];`,
  },
};

/** `text` with its session ids masked: a failed call's text names the caller's session. */
function maskIds(text: string): string {
  return text.replace(/for session \[[^\]]+\]/g, "for session [<id>]");
}

/** What one service gave a real srfsh: its output (timings masked) and the bodies it received. */
interface SrfshSide {
  printed: string;
  bodies: string[];
}

const stacks = new Map<PeerRelease, OpenSrfStack>();

function stackOf(release: PeerRelease): OpenSrfStack {
  const s = stacks.get(release);
  if (!s) throw new Error(`no ${release} stack`);
  return s;
}

/** srfsh's answers for `commands(service)` on one bus, the service's name masked. */
async function srfshSide(release: PeerRelease, service: string, commands: (s: string) => string[]): Promise<SrfshSide> {
  const stack = stackOf(release);
  const run = await stack.srfsh(commands(service), { wire: true, timeoutMs: 45_000 });
  if (run.timedOut) throw new Error(`srfsh on ${release} timed out:\n${run.stdout.slice(-2000)}\n${stack.logTail(40)}`);
  return {
    printed: maskIds(maskService(run.stdout.slice(run.stdout.indexOf("srfsh# ")), service)).replace(
      /^Request Time in seconds: \d+\.\d+$/gm,
      "Request Time in seconds: <t>",
    ),
    bodies: run.wire!.received.map((m) => maskIds(maskService(m.body, service))),
  };
}

/** The Perl case for `service` on one bus: what it returned (or how it died). */
async function perlSide(release: PeerRelease, service: string, perlCase: string): Promise<unknown> {
  const stack = stackOf(release);
  const script = `
use utf8;
my $J = JSON::XS->new->canonical->allow_nonref;
${PERL_FAIL}
my $svc = "${service}";
my $v = eval {
${perlCase}
};
print $J->encode($@ ? { died => "$@" } : $v), "\\n";
`;
  const run = await stack.perl(script, { timeoutMs: 60_000 });
  const line = run.stdout.trim().split("\n").pop() ?? "";
  if (run.code !== 0 || !/^[[{"]/.test(line)) {
    throw new Error(`perl on ${release} failed (${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
  return JSON.parse(maskIds(maskService(line, service)));
}

describe.skipIf(!HAVE_PEERS)("examples/*.ts served unchanged on XMPP (OpenSRF 3.3) and Redis (OpenSRF main)", () => {
  beforeAll(async () => {
    // A cold cache means apt plus a full autotools build: minutes, once per machine.
    for (const release of RELEASES) await ensurePeer(release);
    const services = Object.entries(CALLS).map(([file, c]) => ({
      name: c.service,
      language: "typescript",
      implementation: join(EXAMPLES, file),
      unixConfig: { minChildren: 1, maxChildren: 2, minSpareChildren: 1, maxSpareChildren: 1 },
    }));
    const started = await startTogether(RELEASES.map((release) => startOpenSrfStack({ release, services })));
    for (const [i, stack] of started.entries()) stacks.set(RELEASES[i]!, stack);
    // The same module files on both buses: only the stack (and so the bus) differs.
    await Promise.all(
      RELEASES.flatMap((release) =>
        Object.entries(CALLS).map(([file, c]) => stackOf(release).servePrefork(c.service, join(EXAMPLES, file))),
      ),
    );
  }, 15 * 60_000);

  afterAll(async () => {
    await Promise.all([...stacks.values()].map((s) => s.stop()));
  }, 60_000);

  test("every module in examples/ is served and asked here", () => {
    const modules = readdirSync(EXAMPLES)
      .filter((f) => f.endsWith(".ts"))
      .sort();
    expect(Object.keys(CALLS).sort()).toEqual(modules);
  });

  for (const [file, calls] of Object.entries(CALLS)) {
    test(`examples/${file}: srfsh prints and receives the same on both buses`, async () => {
      const [xmpp, redis] = await Promise.all(RELEASES.map((r) => srfshSide(r, calls.service, calls.srfsh)));
      // Every command answered, nothing lost to a timeout.
      expect(xmpp!.printed, xmpp!.printed).not.toContain("Received no data from server");
      expect(xmpp!.bodies.length).toBeGreaterThan(0);
      // Booleans for the bodies: big results should not print twice on a failure.
      expect(redis!.printed).toBe(xmpp!.printed);
      expect(redis!.bodies.length).toBe(xmpp!.bodies.length);
      redis!.bodies.forEach((b, i) => {
        expect(b === xmpp!.bodies[i], `body ${i}:\n${b.slice(0, 600)}\nvs\n${xmpp!.bodies[i]?.slice(0, 600)}`).toBe(
          true,
        );
      });
    });

    test(`examples/${file}: the Perl client gets the same on both buses`, async () => {
      const [xmpp, redis] = await Promise.all(RELEASES.map((r) => perlSide(r, calls.service, calls.perl)));
      expect(xmpp).not.toHaveProperty("died");
      expect(redis).toEqual(xmpp);
    });
  }

  test("what the answers are (the same on both buses, checked above)", async () => {
    const stack = stackOf("main");
    const run = await stack.srfsh([
      "request example.math add 2, 2",
      "open example.cart",
      'request example.cart add_item "apple", 0.5, 3',
      "request example.cart total",
      "close example.cart",
      "request example.stream count 3",
    ]);
    expect(
      run.replies.map((r) => r.data),
      run.stdout,
    ).toEqual([[4], [1], [1.5], [1, 2, 3]]);
  });

  test("examples/math.ts answers what the real C opensrf.math answers, on each bus", async () => {
    const commands = (s: string) => [
      `request ${s} add 2, 2`,
      `request ${s} sub 10, "4"`,
      `request ${s} mult 6, 7`,
      `request ${s} div 7, 2`,
      `request ${s} add 1`,
      `request ${s} nosuch`,
      `request ${s} opensrf.system.echo "héllo ☃ 🎉", 1, [null]`,
    ];
    for (const release of RELEASES) {
      const [c, ours] = await Promise.all([
        srfshSide(release, "opensrf.math", commands),
        srfshSide(release, CALLS["math.ts"]!.service, commands),
      ]);
      expect(c.printed).toContain("Received Data: 42");
      expect(ours).toEqual(c);
    }
  });
});
