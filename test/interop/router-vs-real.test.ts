/**
 * `osrf-prefork router` in place of the real C opensrf_router, with the REAL OpenSRF 3.3
 * listeners registered with it — C opensrf.math and opensrf.dbmath (opensrf-c), Perl
 * opensrf.settings (osrf_control) — and the real srfsh and Perl client talking through it.
 * Where a behaviour can be compared, the same is done on a second stack that runs the real
 * C router with the same real listeners.
 *
 * Without the tarball this file prints one "skipped" line (set OPENSRF_SRC); with CI set it fails.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { legacyLogin } from "../../devkit/legacy-auth.ts";
import type { PeerService } from "../../devkit/opensrf/configs.ts";
import { ensurePeer, peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import { descendants, procRef, signalRef, waitGone } from "../../devkit/opensrf/procs.ts";
import { createOpenSrfStack, type OpenSrfStack, startOpenSrfStack, startTogether } from "../../devkit/opensrf/stack.ts";
import { TEST_USERS } from "../../devkit/osrf-config.ts";
import { type CliProcess, type CliResult, runCli } from "../../devkit/processes.ts";
import type { Stanza } from "../../src/xmpp/types.ts";
import { rawStanzas } from "../harness/request-raw.ts";

const HAVE_PEER = peerAvailableForTests("test/interop/router-vs-real.test.ts");

/** An osrf-prefork service on the same bus (examples/math.ts), started by the test that uses it. */
const TSMATH: PeerService = {
  name: "opensrf.tsmath",
  language: "typescript",
  implementation: resolve(import.meta.dir, "../../examples/math.ts"),
  unixConfig: { minChildren: 1, maxChildren: 2, minSpareChildren: 1, maxSpareChildren: 1 },
};

describe.skipIf(!HAVE_PEER)("osrf-prefork router with the real C and Perl listeners registered", () => {
  /** Our router, real listeners. */
  let ours: OpenSrfStack;
  /** Our router's process, for its log. */
  let router: CliProcess;
  /** The real C router with the same real listeners, for comparison. */
  let theirs: OpenSrfStack;

  beforeAll(async () => {
    // A cold cache means apt plus a full autotools build: minutes, once per machine.
    await ensurePeer();
    [ours, theirs] = await startTogether([startOurs(), startOpenSrfStack()]);
    router = ours.preforkRouter()!;
  }, 15 * 60_000);

  afterAll(async () => {
    await Promise.all([ours?.stop(), theirs?.stop()]);
  }, 60_000);

  test("real srfsh through ours: stateless, and a CONNECT session (open … close) pinned to a real drone", async () => {
    const before = await forwards(ours, "opensrf.math");
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
    expect(run.stdout).toContain("Service opensrf.math opened");
    // Through the router: the stateless request and the CONNECT. The session's requests and
    // DISCONNECT go straight to the drone that answered the CONNECT.
    expect(await forwards(ours, "opensrf.math")).toBe(before + 2);
  });

  test("the real Perl client through ours: stateless, and connect / request / disconnect with a real drone", async () => {
    const before = await forwards(ours, "opensrf.math");
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
    expect(remote).toMatch(/^opensrf@localhost\/opensrf\.math_drone_/);
    expect(await forwards(ours, "opensrf.math")).toBe(before + 2);
  });

  test("srfsh's class list from ours names the real listeners; the stats name their JIDs", async () => {
    expect((await ours.classList()).sort()).toEqual(["opensrf.dbmath", "opensrf.math", "opensrf.settings"]);
    expect((await ours.classList()).sort()).toEqual((await theirs.classList()).sort());
    for (const s of ["opensrf.math", "opensrf.dbmath"]) {
      // C: <service>_listener_<host>_<time>_<pid>, registered by the listener itself.
      expect(Object.keys(await stats(ours, s))).toEqual([
        expect.stringMatching(
          new RegExp(`^opensrf@localhost/${s.replace(".", "\\.")}_listener_.+_${ours.listenerPid(s)}$`),
        ),
      ]);
    }
    // Perl: opensrf.settings_listener_<host>_<pid>.
    expect(Object.keys(await stats(ours, "opensrf.settings"))).toEqual([
      `opensrf@localhost/opensrf.settings_listener_localhost_${ours.listenerPid("opensrf.settings")}`,
    ]);
  });

  test("real srfsh → ours → osrf-prefork serve: results, a stream, a 404, a CONNECT session; SIGTERM unregisters", async () => {
    const serve = await ours.servePrefork(TSMATH.name, TSMATH.implementation);
    const run = await ours.srfsh([
      "request opensrf.tsmath add 2, 2",
      'request opensrf.tsmath opensrf.system.echo "a", 1',
      "request opensrf.tsmath nosuch",
      "open opensrf.tsmath",
      "request opensrf.tsmath mult 3, 4",
      "close opensrf.tsmath",
    ]);
    expect(run.replies, run.stdout).toEqual([
      { data: [4], exceptions: [], completed: true, noData: false },
      { data: ["a", 1], exceptions: [], completed: true, noData: false },
      {
        data: [],
        exceptions: [
          { name: "osrfMethodException", status: "Method [nosuch] not found for service opensrf.tsmath", code: 404 },
        ],
        completed: true,
        noData: false,
      },
      { data: [12], exceptions: [], completed: true, noData: false },
    ]);
    expect(run.stdout).toContain("Service opensrf.tsmath opened");
    expect(await serve.stop("SIGTERM")).toBe(0);
    await waitFor(async () => !(await ours.classList()).includes(TSMATH.name), "opensrf.tsmath to unregister");
    expect(router.output).toMatch(/Unregistering opensrf@localhost\/opensrf\.tsmath_listener_\S+ from class/);
  }, 90_000);

  test("srfsh gets the same from ours as from the C router, unknown service and router method included", async () => {
    const script = [
      "request router opensrf.router.info.class.list",
      "request opensrf.math add 2, 2",
      "request opensrf.math nosuch",
      "request nosuch.service foo",
      "request router nosuch.method",
      "request router opensrf.router.info.stats.class.node.all",
    ];
    const [a, b] = await Promise.all([ours.srfsh(script), theirs.srfsh(script)]);
    // Counts and class order differ between two stacks; the shapes may not.
    const norm = (run: typeof a) =>
      run.replies.map((r, i) => ({
        ...r,
        data: r.data.map((d) =>
          i === 0 && Array.isArray(d)
            ? [...d].sort()
            : i === 5
              ? Object.fromEntries(Object.entries(d as object).map(([k, v]) => [k, typeof v]))
              : d,
        ),
      }));
    expect(norm(a)).toEqual(norm(b));
    expect(norm(a)).toEqual([
      {
        data: [["opensrf.dbmath", "opensrf.math", "opensrf.settings"]],
        exceptions: [],
        completed: true,
        noData: false,
      },
      { data: [4], exceptions: [], completed: true, noData: false },
      {
        data: [],
        exceptions: [
          { name: "osrfMethodException", status: "Method [nosuch] not found for service opensrf.math", code: 404 },
        ],
        completed: true,
        noData: false,
      },
      // ejabberd bounces the request for a class no router connection serves.
      { data: [], exceptions: [], completed: false, noData: true },
      {
        data: [],
        exceptions: [{ name: "osrfMethodException", status: "Router method not found", code: 404 }],
        completed: true,
        noData: false,
      },
      {
        data: [{ "opensrf.dbmath": "number", "opensrf.math": "number", "opensrf.settings": "number" }],
        exceptions: [],
        completed: true,
        noData: false,
      },
    ]);
    // The Perl client: the same exception for the unknown service, from either router.
    const unknown = `
      my $r = eval { OpenSRF::AppSession->create("nosuch.service")->request("foo")->gather(1); 1 };
      print "died: ", ($@ =~ /(\\S+ IS NOT CONNECTED TO THE NETWORK)/ ? $1 : "no: $@"), "\\n";
    `;
    const [pa, pb] = await Promise.all([ours.perl(unknown), theirs.perl(unknown)]);
    expect(pa.stdout, pa.stderr).toBe("died: router@localhost/nosuch.service IS NOT CONNECTED TO THE NETWORK\n");
    expect(pb.stdout, pb.stderr).toBe(pa.stdout);
  });

  test("the router's own answer, body for body: RESULT without status text, then a separate 205, like C", async () => {
    const ask = async (stack: OpenSrfStack) => {
      const r = await request(stack, "--raw", "--xid", "4242", "router", "opensrf.router.info.class.list");
      expect(r.code, r.stderr).toBe(0);
      return rawStanzas(r.stderr).received;
    };
    const [a, b] = await Promise.all([ask(ours), ask(theirs)]);
    // Class order is each router's own; everything else must match.
    const norm = (s: Stanza) => ({
      ...s,
      to: "",
      thread: "",
      xid: "",
      body: s.body.replace(/"content":\[[^\]]*\]/, ""),
    });
    expect(a.map(norm)).toEqual(b.map(norm));
    expect(a.map((s) => s.body.replace(/"content":\[[^\]]*\]/, '"content":[…]'))).toEqual([
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":null,"statusCode":"0","content":[…]}}}}]',
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}]',
    ]);
    expect(a.map((s) => s.from)).toEqual(["router@localhost/router", "router@localhost/router"]);
    // The one difference: C leaves osrf_xid empty on its own answers; ours carries the caller's.
    expect([a.map((s) => s.xid), b.map((s) => s.xid)]).toEqual([
      ["4242", "4242"],
      ["", ""],
    ]);
  });

  test("SIGUSR2 to a real C listener: ours logs the re-registration, keeps the node and its count, routes on", async () => {
    const before = await stats(ours, "opensrf.dbmath");
    const [jid] = Object.keys(before);
    const mark = router.output.length;
    // osrf_prefork.c: SIGUSR2 → osrf_prefork_register_routers(), a "register" to each router.
    ours.signal("opensrf.dbmath", "SIGUSR2");
    await waitFor(
      () => router.output.slice(mark).includes(`Registering class opensrf.dbmath: node ${jid} is already registered`),
      "our router to log the re-registration",
    );
    expect(await stats(ours, "opensrf.dbmath")).toEqual(before);
    const run = await ours.srfsh("request opensrf.dbmath add 1, 1");
    expect(run.replies[0]?.data).toEqual([2]);
    expect(await stats(ours, "opensrf.dbmath")).toEqual({ [jid!]: before[jid!]! + 1 });
  });

  test("SIGUSR2 to the real Perl listener (Server.pm: USR2 → register_routers): the same", async () => {
    const before = await stats(ours, "opensrf.settings");
    const [jid] = Object.keys(before);
    const mark = router.output.length;
    ours.signal("opensrf.settings", "SIGUSR2");
    await waitFor(
      () => router.output.slice(mark).includes(`Registering class opensrf.settings: node ${jid} is already registered`),
      "our router to log the Perl listener's re-registration",
    );
    expect(await stats(ours, "opensrf.settings")).toEqual(before);
    const run = await ours.srfsh(
      'request opensrf.settings opensrf.settings.xpath.get "/opensrf/default/apps/opensrf.math/keepalive"',
    );
    expect(run.replies[0]?.data, run.stdout).toEqual([[3]]);
    expect(await stats(ours, "opensrf.settings")).toEqual({ [jid!]: before[jid!]! + 1 });
  });

  test("SIGUSR1 unregisters a real C listener from ours (requests bounce), SIGUSR2 registers it again", async () => {
    ours.signal("opensrf.math", "SIGUSR1");
    await waitFor(async () => !(await ours.classList()).includes("opensrf.math"), "opensrf.math to unregister");
    expect(router.output).toContain(`Unregistering opensrf@localhost/opensrf.math_listener_`);
    // With the class gone, so is router@localhost/opensrf.math: ejabberd bounces to srfsh.
    const gone = await ours.srfsh("request opensrf.math add 1, 1");
    expect(gone.replies[0], gone.stdout).toMatchObject({ data: [], noData: true });
    ours.signal("opensrf.math", "SIGUSR2");
    await ours.waitForService("opensrf.math", 30_000);
    const back = await ours.srfsh("request opensrf.math add 1, 1");
    expect(back.replies[0]?.data).toEqual([2]);
  }, 60_000);

  test("two real C listeners of one class take turns; one SIGKILLed (no unregister), every request still answered", async () => {
    const first = ours.listenerPid("opensrf.dbmath");
    await ours.startCService("opensrf.dbmath");
    await waitFor(async () => Object.keys(await stats(ours, "opensrf.dbmath")).length === 2, "a second node");
    const before = await stats(ours, "opensrf.dbmath");
    const adds = (n: number) => Array.from({ length: n }, (_, i) => `request opensrf.dbmath add ${i}, 1`);
    const run = await ours.srfsh(adds(4));
    expect(run.replies.map((r) => r.data)).toEqual([[1], [2], [3], [4]]);
    // Round robin: two forwards each.
    const after = await stats(ours, "opensrf.dbmath");
    expect(Object.keys(after).map((k) => after[k]! - before[k]!)).toEqual([2, 2]);

    const dead = Object.keys(after).find((k) => k.endsWith(`_${first}`))!;
    await killListener(ours, first, dead);
    const run2 = await ours.srfsh(adds(4));
    expect(
      run2.replies.map((r) => r.data),
      run2.stdout,
    ).toEqual([[1], [2], [3], [4]]);
    // ejabberd's bounce of the forward to the dead node told ours; that node is gone.
    expect(Object.keys(await stats(ours, "opensrf.dbmath"))).toEqual(Object.keys(after).filter((k) => k !== dead));
    expect(router.output).toContain(`node ${dead} of opensrf.dbmath is unreachable (service-unavailable); removing it`);
  }, 90_000);

  test("the last real listener of a class dies: every real client fails at once, behind ours as behind C", async () => {
    // Each case needs a fresh loss: only the first request after it meets the router's answer.
    // Ours answers an osrfMethodException 503 on the caller's thread.
    const text = "Service opensrf.dbmath has no listener left (its last listener went away)";
    await loseLastListener(ours);
    const srfsh = await ours.srfsh("request opensrf.dbmath add 1, 1");
    expect(srfsh.replies[0]?.exceptions, srfsh.stdout).toEqual([
      { name: "osrfMethodException", status: text, code: 503 },
    ]);
    await loseLastListener(ours);
    const perl = await ours.perl(`
      my $req = OpenSRF::AppSession->create("opensrf.dbmath")->request("add", 1, 1);
      eval { $req->gather(1) };
      print $req->failed ? $req->failed->statusCode . " " . $req->failed->status : "not failed: $@", "\\n";
    `);
    expect(perl.stdout, perl.stderr).toBe(`503 ${text}\n`);
    await loseLastListener(ours);
    const cli = await request(ours, "opensrf.dbmath", "add", "1", "1");
    expect([cli.code, cli.stderr]).toEqual([1, `osrf-prefork: opensrf.dbmath add: osrfMethodException 503: ${text}\n`]);

    // The C router sends the caller's message back with <error type="cancel" code="501"/>.
    await loseLastListener(theirs);
    const cSrfsh = await theirs.srfsh("request opensrf.dbmath add 1, 1");
    expect(cSrfsh.replies[0], cSrfsh.stdout).toMatchObject({ data: [], noData: true, completed: false });
    await loseLastListener(theirs);
    const cCli = await request(theirs, "opensrf.dbmath", "add", "1", "1");
    expect([cCli.code, cCli.stderr]).toEqual([
      3,
      "osrf-prefork: service opensrf.dbmath is not available: no listener is registered for it with router@localhost (XMPP undefined-condition)\n",
    ]);
    await Promise.all([ours.startCService("opensrf.dbmath"), theirs.startCService("opensrf.dbmath")]);
  }, 180_000);

  test("SIGTERM to a real C listener: it unregisters, ours drops the class; started again, it serves again", async () => {
    const pid = ours.listenerPid("opensrf.dbmath");
    const ref = procRef(pid)!;
    const mark = router.output.length;
    ours.signal("opensrf.dbmath", "SIGTERM");
    expect(await waitGone([ref], 30_000)).toBe(true);
    await waitFor(async () => !(await ours.classList()).includes("opensrf.dbmath"), "opensrf.dbmath to go");
    // It said so itself: an unregister, not a bounce.
    expect(router.output.slice(mark)).toMatch(
      /Unregistering opensrf@localhost\/opensrf\.dbmath_listener_\S+ from class/,
    );
    expect(router.output.slice(mark)).not.toContain("unreachable");
    await ours.startCService("opensrf.dbmath");
    const run = await ours.srfsh("request opensrf.math add 20, 22");
    expect(run.replies[0]?.data).toEqual([42]);
  }, 90_000);

  test("stats for a class nobody registered: ours answers {} and 0, where the C router dies", async () => {
    const run = await ours.srfsh([
      'request router opensrf.router.info.stats.class "nosuch.class"',
      'request router opensrf.router.info.stats.class.summary "nosuch.class"',
    ]);
    expect(run.replies.map((r) => r.data)).toEqual([[{}], [0]]);
    expect(ours.routerPids()).toHaveLength(1);
    // osrf_router.c reads class->nodes of the NULL it got for the unknown class: no answer, no router.
    const c = await request(theirs, "--timeout", "5", "router", "opensrf.router.info.stats.class", '"nosuch.class"');
    expect(c.code, c.stderr).toBe(4);
    await waitFor(() => theirs.routerPids().length === 0, "the C router to die");
  });

  test("SIGTERM to the real Perl listener: it unregisters from ours", async () => {
    const ref = procRef(ours.listenerPid("opensrf.settings"))!;
    ours.signal("opensrf.settings", "SIGTERM");
    expect(await waitGone([ref], 30_000)).toBe(true);
    expect((await ours.classList()).sort()).toEqual(["opensrf.dbmath", "opensrf.math"]);
    expect(router.output).toMatch(
      /Unregistering opensrf@localhost\/opensrf\.settings_listener_localhost_\d+ from class/,
    );
  });
});

async function startOurs(): Promise<OpenSrfStack> {
  const stack = await createOpenSrfStack({ services: [TSMATH] });
  try {
    await stack.startPreforkRouter();
    await stack.startPerlSettings();
    await stack.startCServices(["opensrf.dbmath", "opensrf.math"]);
    return stack;
  } catch (err) {
    await stack.stop().catch(() => {});
    throw err;
  }
}

/** `opensrf.router.info.stats.class`: forwards per node JID, asked by srfsh. */
async function stats(stack: OpenSrfStack, cls: string): Promise<Record<string, number>> {
  const run = await stack.srfsh(`request router opensrf.router.info.stats.class "${cls}"`);
  const got = run.replies[0]?.data[0];
  if (!got || typeof got !== "object") throw new Error(`no stats for ${cls}: ${run.stdout}${run.stderr}`);
  return got as Record<string, number>;
}

async function forwards(stack: OpenSrfStack, cls: string): Promise<number> {
  return Object.values(await stats(stack, cls)).reduce((a, b) => a + b, 0);
}

/** `osrf-prefork request` on the stack's opensrf_core.xml. */
function request(stack: OpenSrfStack, ...args: string[]): Promise<CliResult> {
  const timeout = args.includes("--timeout") ? [] : ["--timeout", "30"];
  return runCli(["request", "--config", stack.paths.core, ...timeout, ...args], { timeoutMs: 60_000 });
}

/**
 * SIGKILL a real C listener (no unregister) and its drones (they would outlive it, orphaned,
 * out of the stack's reach), then wait until ejabberd has dropped its session: until then a
 * forward to it is not bounced but swallowed.
 */
async function killListener(stack: OpenSrfStack, pid: number, jid: string): Promise<void> {
  const ref = procRef(pid);
  if (!ref) throw new Error(`listener ${pid} is not running`);
  const tree = [ref, ...descendants([ref])];
  for (const r of tree) signalRef(r, "SIGKILL");
  if (!(await waitGone(tree, 10_000))) throw new Error(`listener ${pid} survived SIGKILL`);
  const probe = await legacyLogin({
    host: stack.xmpp.host,
    port: stack.xmpp.port,
    domain: stack.xmpp.domain,
    user: TEST_USERS[0]![0],
    password: TEST_USERS[0]![1],
    resource: `probe_${process.pid}_${pid}`,
    mode: "digest",
  });
  try {
    await waitFor(async () => {
      probe.send(`<message to="${jid}"><thread>probe</thread><body>[]</body></message>`);
      const got = await probe.nextStanza(500).catch(() => "");
      return got.includes("type='error'") || got.includes('type="error"');
    }, `ejabberd to drop ${jid}`);
  } finally {
    probe.close();
  }
}

/** Make sure exactly one opensrf.dbmath listener runs, then kill it as {@link killListener} does. */
async function loseLastListener(stack: OpenSrfStack): Promise<void> {
  if (!(await stack.classList()).includes("opensrf.dbmath")) await stack.startCService("opensrf.dbmath");
  const nodes = Object.keys(await stats(stack, "opensrf.dbmath"));
  if (nodes.length !== 1) throw new Error(`expected one opensrf.dbmath node, have ${nodes}`);
  await killListener(stack, stack.listenerPid("opensrf.dbmath"), nodes[0]!);
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}
