/**
 * `osrf-prefork serve` behind the REAL C router, called by the REAL Perl client
 * (OpenSRF::AppSession), compared with the REAL C opensrf.math on the same bus (OpenSRF 3.3.0
 * built from its release tarball).
 *
 * Each test runs one Perl case for C's opensrf.math and then for ours (examples/math.ts as
 * opensrf.tsmath) in one Perl client, and compares two things:
 * - what the case returns — results, response objects and exception objects as the client
 *   decoded them, serialised by JSON::XS (canonical, ASCII) — with the service name and the
 *   timestamps of exception texts masked;
 * - the bodies the client received from the service's drones, recorded where Perl's transport
 *   hands them on (OpenSRF::Transport::handler), with the service name masked.
 *
 * Without the tarball this file prints one "skipped" line (set OPENSRF_SRC); with CI set it fails.
 */
import { describe, expect, test } from "bun:test";
import { peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import type { OpenSrfStack } from "../../devkit/opensrf/stack.ts";
import { usePeerStack } from "../harness/peer-stack.ts";
import {
  blankPieces,
  C,
  CHUNK_SIZE,
  escapedCost,
  expectSessionOfTwoRequests,
  isDroneOf,
  maskJid,
  maskService,
  OURS,
  partialPieces,
  shapeOf,
  startMathStack,
} from "./vs-c.ts";

const HAVE_PEER = peerAvailableForTests("test/interop/perl-vs-c.test.ts");

/** What one service gave the Perl client in a case. */
interface PerlSide {
  /** The case's return value as canonical JSON, masked. */
  result: string;
  /** Bodies received from the service's drones, in order, masked. */
  bodies: string[];
  /** Their senders, masked but for the host part. */
  senders: string[];
  /** Per body: "same" when it carried the xid of the client's request, else the xid it carried. */
  xids: string[];
}

let stack: OpenSrfStack;

/** Masks the service name, and the timestamps Perl exceptions put in their texts. */
const mask = (text: string, service: string) =>
  maskService(text, service).replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/g, "<ts>");

/**
 * Runs `perlCase` — the body of a Perl sub that gets the service name in `$svc` and returns
 * a value — for C's service, then ours, in one real Perl client.
 */
async function perlBoth(perlCase: string): Promise<{ c: PerlSide; ours: PerlSide }> {
  const script = `
use utf8;
use Scalar::Util qw(blessed);
my $J = JSON::XS->new->canonical->ascii->allow_nonref;
# Every message the transport receives, before the session layer decodes it.
my @WIRE;
{
  no warnings 'redefine';
  my $orig = \\&OpenSRF::Transport::handler;
  *OpenSRF::Transport::handler = sub {
    my $d = $_[2];
    # The client makes an xid per request (AppSession::request); replies should carry it back.
    push @WIRE, { from => $d->from, body => $d->body, xid => ($d->osrf_xid eq OpenSRF::Utils::Logger->get_osrf_xid ? "same" : $d->osrf_xid) };
    goto &$orig;
  };
}
# A response or exception object as it travelled: {"__c": class hint, "__p": fields}.
sub wire_obj { my $o = shift; return blessed($o) ? OpenSRF::Utils::JSON->perl2JSONObject($o) : $o }
my $case = sub {
  my $svc = shift;
${perlCase}
};
my %out;
for my $svc ("${C}", "${OURS}") {
  @WIRE = ();
  my $res = eval { $case->($svc) };
  $out{$svc} = { result => $@ ? { died => "$@" } : $res, wire => [@WIRE] };
}
print $J->encode(\\%out), "\\n";
`;
  // Bounded below the test's own timeout, so a hang still reports the stack's logs.
  const run = await stack.perl(script, { timeoutMs: 45_000 });
  if (run.code !== 0 || run.timedOut) {
    throw new Error(
      `perl exited ${run.code}${run.timedOut ? " (timed out)" : ""}: ${run.stderr}\n${stack.logTail(40)}`,
    );
  }
  const out = JSON.parse(run.stdout) as Record<
    string,
    { result: unknown; wire: Array<{ from: string; body: string; xid: string }> }
  >;
  const side = (service: string): PerlSide => {
    const { result, wire } = out[service]!;
    // Besides the service's drones only opensrf.settings talks to the client (AppSession->create).
    expect(wire.filter((m) => !isDroneOf(m.from, service) && !isDroneOf(m.from, "opensrf.settings"))).toEqual([]);
    const mine = wire.filter((m) => isDroneOf(m.from, service));
    return {
      result: mask(JSON.stringify(result), service),
      bodies: mine.map((m) => mask(m.body, service)),
      senders: mine.map((m) => maskJid(m.from, service)),
      xids: mine.map((m) => m.xid),
    };
  };
  const c = side(C);
  expect(c.bodies.length).toBeGreaterThan(0);
  expect(new Set(c.xids)).toEqual(new Set(["same"]));
  return { c, ours: side(OURS) };
}

describe.skipIf(!HAVE_PEER)(
  "real Perl client: osrf-prefork serve vs the real C opensrf.math, behind the real C router",
  () => {
    usePeerStack(startMathStack, (started) => {
      stack = started;
    });

    test("request(...)->gather(1) for add and echo, and every response object of a typed echo", async () => {
      const { c, ours } = await perlBoth(`
  my $ses = OpenSRF::AppSession->create($svc);
  my %r = (add => $ses->request("add", 2, 2)->gather(1), echo => $ses->request("opensrf.system.echo", "hi")->gather(1));
  my $req = $ses->request("opensrf.system.echo", "a", 1, 2.5, OpenSRF::Utils::JSON->true, undef, [1, 2], { k => "v" });
  my @all;
  while (my $resp = $req->recv(timeout => 30)) { push @all, wire_obj($resp) }
  $r{responses} = \\@all;
  $r{complete} = $req->complete ? 1 : 0;
  $req->finish;
  $ses->disconnect;
  return \\%r;`);
      expect(JSON.parse(c.result)).toEqual({
        add: 4,
        echo: "hi",
        complete: 1,
        responses: ["a", 1, 2.5, true, null, [1, 2], { k: "v" }].map((content) => ({
          __c: "osrfResult",
          __p: { content, status: "OK", statusCode: "200" },
        })),
      });
      expect(ours).toEqual(c);
    });

    test("$session->connect, requests on the session, disconnect: one drone, C's CONNECT reply", async () => {
      const { c, ours } = await perlBoth(`
  my $ses = OpenSRF::AppSession->create($svc);
  my $ok = $ses->connect ? 1 : 0;
  my %r = (connected => $ok, state => $ses->state, remote => $ses->remote_id);
  $r{results} = [$ses->request("add", 3, 4)->gather(1), $ses->request("opensrf.system.echo", "in session")->gather(1)];
  $ses->disconnect;
  $r{state_after} = $ses->state;
  return \\%r;`);
      const cResult = JSON.parse(c.result);
      // CONNECTED is 1, DISCONNECTED 2 (OpenSRF::AppSession).
      expect(cResult).toMatchObject({ connected: 1, state: 1, state_after: 2, results: [7, "in session"] });
      expect(cResult.remote).toMatch(/^opensrf@localhost\/S_drone_/);
      expectSessionOfTwoRequests(c);
      // The drone's JID differs in time and pid only; the rest is compared as it is.
      const unpinned = (s: PerlSide) => ({ ...s, result: s.result.replace(/_\d+\.\d+_\d+"/, '_<time>_<pid>"') });
      expect(unpinned(ours)).toEqual(unpinned(c));
    });

    test("a 100 KB result: both drones send partials, the Perl client reassembles the same string", async () => {
      // In a session: the request then goes straight to the drone. A stateless one passes
      // through C's listener, whose child reads it from a pipe non-blocking once the first
      // 1 KB arrived (osrf_prefork.c prefork_child_wait): past the 64 KB pipe buffer C may
      // take a cut request and answer nothing; the last check shows ours does not.
      const { c, ours } = await perlBoth(`
  my $ses = OpenSRF::AppSession->create($svc);
  $ses->connect or die "no connect";
  my $big = "0123456789" x 10000;
  my $got = $ses->request("opensrf.system.echo", $big)->gather(1);
  $ses->disconnect;
  return { same => ($got eq $big ? 1 : 0), length => length($got) };`);
      expect(JSON.parse(c.result)).toEqual({ same: 1, length: 100_000 });
      expect(ours.result).toBe(c.result);
      expect(ours.xids).toEqual(c.xids);
      // Every piece from the session's drone.
      expect(new Set(c.senders).size).toBe(1);
      expect(new Set(ours.senders)).toEqual(new Set(c.senders));
      const chunked = [
        ["osrfConnectStatus"],
        ["osrfResultPartial"],
        ["osrfResultPartial"],
        ["osrfResultPartialComplete"],
        ["osrfConnectStatus"],
      ];
      expect(shapeOf(c.bodies)).toEqual(chunked);
      expect(shapeOf(ours.bodies)).toEqual(chunked);
      expect(blankPieces(ours.bodies)).toEqual(blankPieces(c.bodies));
      const json = JSON.stringify("0123456789".repeat(10_000));
      expect(partialPieces(c.bodies).join("")).toBe(json);
      expect(partialPieces(ours.bodies).join("")).toBe(json);
      // Where the text is cut differs, as documented (see srfsh-vs-c's 60 KB test).
      const stride = Math.floor((json.length / escapedCost(json)) * CHUNK_SIZE);
      expect(partialPieces(c.bodies).map((p) => p.length)).toEqual([stride, json.length - stride]);
      expect(partialPieces(ours.bodies).map(escapedCost)).toEqual([CHUNK_SIZE, escapedCost(json) - CHUNK_SIZE]);
      // Ours, stateless: the 100 KB request reaches a drone whole (IPC, no pipe race).
      const stateless = await stack.perl(
        `my $big = "0123456789" x 10000;
         my $got = OpenSRF::AppSession->create("${OURS}")->request("opensrf.system.echo", $big)->gather(1);
         print $got eq $big ? "same" : "differs", "\\n";`,
        { timeoutMs: 45_000 },
      );
      expect(stateless.stdout.trim(), stateless.stderr).toBe("same");
    });

    test("unicode both ways: Perl character strings with astral emoji and <&>'\" come back as the same characters", async () => {
      const { c, ours } = await perlBoth(`
  my $ses = OpenSRF::AppSession->create($svc);
  my $u = "héllo wörld ✓ 日本語 😀🎉 <&>'\\" \\\\ / tab\\there \\x{7f}";
  my $got = $ses->request("opensrf.system.echo", $u, { "clé ✓" => ["😀"] })->gather(1);
  my $req = $ses->request("opensrf.system.echo", $u, { "clé ✓" => ["😀"] });
  my @all; while (my $resp = $req->recv(timeout => 30)) { push @all, $resp->content }
  return { got => $got, same => ($got eq $u ? 1 : 0), length => length($got), ords => [map { ord } split //, $got], all => \\@all };`);
      const expected = "héllo wörld ✓ 日本語 😀🎉 <&>'\" \\ / tab\there \x7f";
      const cResult = JSON.parse(c.result);
      expect(cResult).toMatchObject({ got: expected, same: 1, all: [expected, { "clé ✓": ["😀"] }] });
      // Perl has characters, not UTF-8 bytes or surrogate halves: 😀 is one character.
      expect(cResult.length).toBe([...expected].length);
      expect(cResult.ords).toEqual([...expected].map((ch) => ch.codePointAt(0)));
      expect(ours).toEqual(c);
    });

    test("the exception object for 404: same class and statusCode/status, same object when thrown by gather", async () => {
      const { c, ours } = await perlBoth(`
  my $ses = OpenSRF::AppSession->create($svc);
  my $req = $ses->request("nosuch", 1);
  $req->wait_complete(30);
  my $resp = $req->recv(timeout => 1);
  my $f = $req->failed;
  my %r = (class => ref($f), status => $f->status, statusCode => $f->statusCode, object => wire_obj($f),
           text => $f->stringify, complete => $req->complete ? 1 : 0, recv => ref($resp));
  eval { $ses->request("nosuch", 1)->gather(1) };
  my $e = $@;
  $r{gather} = { class => ref($e), message => $e->message };
  return \\%r;`);
      const cResult = JSON.parse(c.result);
      expect(cResult).toMatchObject({
        class: "OpenSRF::DomainObject::oilsMethodException",
        status: "Method [nosuch] not found for service S",
        statusCode: "404",
        object: {
          __c: "osrfMethodException",
          __p: { status: "Method [nosuch] not found for service S", statusCode: "404" },
        },
        complete: 1,
        gather: { class: "OpenSRF::EX::ERROR" },
      });
      expect(cResult.gather.message).toContain("<404>  Method [nosuch] not found for service S");
      expect(ours).toEqual(c);
    });

    test("too few params and an unknown method with a non-ASCII name: the same exception objects", async () => {
      const { c, ours } = await perlBoth(`
  my $ses = OpenSRF::AppSession->create($svc);
  my @r;
  for my $call (["add", 1], ["div"], ["nosüch😀"]) {
    my $req = $ses->request(@$call);
    $req->wait_complete(30);
    $req->recv(timeout => 1);
    push @r, wire_obj($req->failed);
  }
  return \\@r;`);
      expect(JSON.parse(c.result)).toEqual(
        [
          "Not enough params for method add / service S",
          "Not enough params for method div / service S",
          "Method [nosüch😀] not found for service S",
        ].map((status) => ({ __c: "osrfMethodException", __p: { status, statusCode: "404" } })),
      );
      expect(ours).toEqual(c);
    });
  },
);
