/**
 * `osrf-prefork request` against the REAL OpenSRF 3.3 stack: the real C router, the real
 * Perl opensrf.settings and the real C opensrf.math / opensrf.dbmath. Output and exit codes
 * for each kind of answer the real services give, next to what real srfsh gets for the same.
 *
 * Without the tarball this file prints one "skipped" line (set OPENSRF_SRC); with CI set it fails.
 */
import { describe, expect, test } from "bun:test";
import { peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import { type OpenSrfStack, startOpenSrfStack } from "../../devkit/opensrf/stack.ts";
import { type CliResult, runCli } from "../../devkit/processes.ts";
import { decodeBody } from "../../src/protocol/codec.ts";
import { usePeerStack } from "../harness/peer-stack.ts";
import { rawStanzas } from "../harness/request-raw.ts";

const HAVE_PEER = peerAvailableForTests("test/interop/request-vs-real.test.ts");

describe.skipIf(!HAVE_PEER)("osrf-prefork request against the real C services behind the real C router", () => {
  let stack: OpenSrfStack;

  usePeerStack(startOpenSrfStack, (started) => {
    stack = started;
  });

  const request = (...args: string[]): Promise<CliResult> => {
    const timeout = args.includes("--timeout") ? [] : ["--timeout", "30"];
    return runCli(["request", "--config", stack.paths.core, ...timeout, ...args], { timeoutMs: 60_000 });
  };

  test("opensrf.math add 2 2: prints 4, exits 0 — in either param form, as srfsh gets 4", async () => {
    const [a, b, srfsh] = await Promise.all([
      request("opensrf.math", "add", "2", "2"),
      request("opensrf.math", "add", "2, 2"),
      stack.srfsh("request opensrf.math add 2, 2"),
    ]);
    expect([a.code, a.stdout, a.stderr]).toEqual([0, "4\n", ""]);
    expect([b.code, b.stdout, b.stderr]).toEqual([0, "4\n", ""]);
    expect(srfsh.replies[0]?.data).toEqual([4]);
  });

  test("several RESULTs from the real service: one JSON line each, the values srfsh shows", async () => {
    const params = ['"a"', "1", '{"k":[true,null]}'];
    const [ours, srfsh] = await Promise.all([
      request("opensrf.math", "opensrf.system.echo", ...params),
      stack.srfsh(`request opensrf.math opensrf.system.echo ${params.join(", ")}`),
    ]);
    expect([ours.code, ours.stdout]).toEqual([0, '"a"\n1\n{"k":[true,null]}\n']);
    expect(
      ours.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual(srfsh.replies[0]!.data);
  });

  test("unknown method and too few params: exit 1 with the real service's 404 texts, as srfsh shows them", async () => {
    const [nosuch, few, srfsh] = await Promise.all([
      request("opensrf.math", "nosuch"),
      request("opensrf.math", "add", "1"),
      stack.srfsh(["request opensrf.math nosuch", "request opensrf.math add 1"]),
    ]);
    const texts = srfsh.replies.map((r) => r.exceptions[0]?.status);
    expect(texts).toEqual([
      "Method [nosuch] not found for service opensrf.math",
      "Not enough params for method add / service opensrf.math",
    ]);
    expect([nosuch.code, nosuch.stdout, nosuch.stderr]).toEqual([
      1,
      "",
      `osrf-prefork: opensrf.math nosuch: osrfMethodException 404: ${texts[0]}\n`,
    ]);
    expect([few.code, few.stderr]).toEqual([
      1,
      `osrf-prefork: opensrf.math add: osrfMethodException 404: ${texts[1]}\n`,
    ]);
  });

  test("unknown service: exit 3 on ejabberd's bounce, where srfsh prints 'Received no data from server'", async () => {
    const [ours, connected, srfsh] = await Promise.all([
      request("nosuch.service", "foo"),
      request("--connect", "nosuch.service", "foo"),
      stack.srfsh("request nosuch.service foo"),
    ]);
    const text =
      "osrf-prefork: service nosuch.service is not available: no listener is registered for it with router@localhost (XMPP service-unavailable)\n";
    expect([ours.code, ours.stdout, ours.stderr]).toEqual([3, "", text]);
    expect([connected.code, connected.stderr]).toEqual([3, text]);
    expect(srfsh.replies[0]).toMatchObject({ data: [], noData: true });
  });

  test("--connect: a real C drone answers the CONNECT, then gets the REQUEST and DISCONNECT directly", async () => {
    const r = await request("--connect", "--raw", "opensrf.math", "add", "2", "2");
    expect([r.code, r.stdout]).toEqual([0, "4\n"]);
    const { sent, received } = rawStanzas(r.stderr);
    const drone = received[0]!.from;
    expect(drone).toMatch(/^opensrf@localhost\/opensrf\.math_drone_/);
    expect(sent.map((s) => [s.to, decodeBody(s.body).map((m) => m.type)])).toEqual([
      ["router@localhost/opensrf.math", ["CONNECT"]],
      [drone, ["REQUEST"]],
      [drone, ["DISCONNECT"]],
    ]);
    const connected = decodeBody(received[0]!.body)[0];
    expect(connected?.type === "STATUS" && [connected.payload.statusCode, connected.payload.status]).toEqual([
      200,
      "Connection Successful",
    ]);
    // One thread for the whole session.
    expect(new Set([...sent, ...received].map((s) => s.thread)).size).toBe(1);
  });

  test("unicode round trip through the real C service, which answers in \\u escapes with surrogate pairs", async () => {
    const text = "héllo ☃ 𝄞 日本語";
    const r = await request("--raw", "opensrf.math", "opensrf.system.echo", JSON.stringify(text));
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(text);
    // What the C library put on the wire for it.
    expect(rawStanzas(r.stderr).received[0]!.body).toContain(
      '"h\\u00e9llo \\u2603 \\ud834\\udd1e \\u65e5\\u672c\\u8a9e"',
    );
    const [srfsh, perl] = await Promise.all([
      stack.srfsh(`request opensrf.math opensrf.system.echo ${JSON.stringify(text)}`),
      stack.perl(`
        my $text = "h\\x{e9}llo \\x{2603} \\x{1D11E} \\x{65e5}\\x{672c}\\x{8a9e}";
        my $got = OpenSRF::AppSession->create("opensrf.math")->request("opensrf.system.echo", $text)->gather(1);
        print JSON::XS->new->ascii->encode([$got, $got eq $text ? 1 : 0]), "\\n";
      `),
    ]);
    expect(srfsh.replies[0]?.data).toEqual([text]);
    expect(JSON.parse(perl.stdout || "null"), perl.stderr).toEqual([text, 1]);
  });

  test("only 'Request Complete', no RESULT (C math add 1, \"a\"): prints nothing, exits 0, like srfsh's no data", async () => {
    // osrf_math.c rebuilds the params with jsonParseFmt("[ %s, %s ]"): "a" is not JSON there.
    const [ours, srfsh] = await Promise.all([
      request("opensrf.math", "add", "1", '"a"'),
      stack.srfsh('request opensrf.math add 1, "a"'),
    ]);
    expect([ours.code, ours.stdout, ours.stderr]).toEqual([0, "", ""]);
    expect(srfsh.replies[0]).toMatchObject({ data: [], noData: true, completed: true });
  });

  test("a reply that is not JSON (C dbmath div 1 0 → inf): exit 1 naming the parse error, not a wait", async () => {
    const r = await request("opensrf.dbmath", "div", "1", "0");
    expect([r.code, r.stdout]).toEqual([1, ""]);
    expect(r.stderr).toContain('not valid JSON (JSON Parse error: Unexpected identifier "inf")');
  });

  test("a request the real service drops (its JSON parser refuses \\u0000): exit 4 after --timeout", async () => {
    const r = await request("--timeout", "2", "opensrf.math", "opensrf.system.echo", '"a\\u0000b"');
    expect([r.code, r.stdout]).toEqual([4, ""]);
    expect(r.stderr).toMatch(/^osrf-prefork: opensrf\.math opensrf\.system\.echo: no reply within 2 s /);
  });

  test("the real C router's own methods: class list and stats", async () => {
    const [list, stats] = await Promise.all([
      request("router", "opensrf.router.info.class.list"),
      request("router", "opensrf.router.info.stats.class", '"opensrf.math"'),
    ]);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as string[]).sort()).toEqual([
      "opensrf.dbmath",
      "opensrf.math",
      "opensrf.settings",
    ]);
    expect(Object.keys(JSON.parse(stats.stdout))).toEqual([
      expect.stringMatching(
        new RegExp(`^opensrf@localhost/opensrf\\.math_listener_.+_${stack.listenerPid("opensrf.math")}$`),
      ),
    ]);
  });

  test("the real Perl opensrf.settings, asked by our client: the values of opensrf.xml", async () => {
    const r = await request(
      "opensrf.settings",
      "opensrf.settings.xpath.get",
      '"/opensrf/default/apps/opensrf.math/unix_config/max_children"',
    );
    expect([r.code, r.stdout]).toEqual([0, "[3]\n"]);
    const host = await request("opensrf.settings", "opensrf.settings.host_config.get", '"localhost"');
    expect(JSON.parse(host.stdout)).toMatchObject({
      activeapps: { appname: ["opensrf.settings", "opensrf.math", "opensrf.dbmath"] },
      apps: { "opensrf.dbmath": { language: "c", implementation: "libosrf_dbmath.so" } },
    });
  });
});
