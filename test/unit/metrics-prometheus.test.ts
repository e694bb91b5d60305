/**
 * The Prometheus text we export, read back with a real parser of the format
 * (parse-prometheus-text-format), not with regular expressions.
 */
import { describe, expect, test } from "bun:test";
import parse from "parse-prometheus-text-format";
import { Histogram } from "../../src/metrics/histogram.ts";
import { escapeHelp, escapeLabelValue, formatValue, PrometheusText } from "../../src/metrics/prometheus.ts";
import { MetricName, renderMetrics } from "../../src/metrics/render.ts";
import { PoolMetrics } from "../../src/prefork/pool-metrics.ts";
import type { DroneEvents, DroneHandle } from "../../src/prefork/types.ts";

function family(text: string, name: string) {
  const f = parse(text).find((x) => x.name === name);
  if (!f) throw new Error(`no family ${name} in:\n${text}`);
  return f;
}

describe("text format pieces", () => {
  test("label values escape backslash, double quote and newline", () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
  });

  test("help texts escape backslash and newline only", () => {
    expect(escapeHelp('x\\y\n"z"')).toBe('x\\\\y\\n"z"');
  });

  test("special values are spelled as Prometheus does", () => {
    expect([Infinity, -Infinity, NaN, 0.25, 3].map(formatValue)).toEqual(["+Inf", "-Inf", "NaN", "0.25", "3"]);
  });

  test("awkward label values survive a round trip through the parser", () => {
    const nasty = 'open"srf\\math\nadd';
    const text = new PrometheusText()
      .family("t_total", "counter", "Help with \\ and\nnewline", [{ labels: { method: nasty }, value: 2 }])
      .toString();
    const f = family(text, "t_total");
    expect(f.type).toBe("COUNTER");
    expect(f.help).toBe("Help with \\ and\nnewline");
    expect(f.metrics).toEqual([{ labels: { method: nasty }, value: "2" }]);
  });

  test("a histogram has cumulative buckets up to +Inf, a sum and a count", () => {
    const h = new Histogram([0.1, 1, 10]);
    for (const v of [0.05, 0.1, 0.5, 2, 20]) h.observe(v);
    const text = new PrometheusText().histogram("d_seconds", "Durations", h.snapshot()).toString();
    const f = family(text, "d_seconds");
    expect(f.type).toBe("HISTOGRAM");
    expect(f.metrics).toEqual([
      { buckets: { "0.1": "2", "1": "3", "10": "4", "+Inf": "5" }, count: "5", sum: "22.65" },
    ]);
    expect(text.endsWith("\n")).toBe(true);
  });
});

/** A spawner whose drones are driven by the test. */
function fakeDrone(m: PoolMetrics, pid: number) {
  let events!: DroneEvents;
  const handle: DroneHandle = m
    .observeSpawner({
      spawn(e) {
        events = e;
        return { pid, send: () => true, kill: () => {} };
      },
    })
    .spawn({ message: () => {}, exit: () => {} }, pid === 101 ? "min_children" : "demand");
  return {
    handle,
    say: (msg: unknown) => events.message(msg),
    exit: (code: number | null, sig: string | null) => events.exit(code, sig),
  };
}

describe("renderMetrics", () => {
  test("every family parses, has help and type, and carries the pool's numbers", () => {
    const m = new PoolMetrics("opensrf.math");
    const a = fakeDrone(m, 101);
    const b = fakeDrone(m, 102);
    a.say({ type: "ready", address: "a" });
    b.say({ type: "ready", address: "b" });
    a.handle.send({ type: "request", stanza: {} as never });
    a.say({ type: "busy", method: "add", since: Date.now() });
    a.say({
      type: "available",
      served: 1,
      rssBytes: 1,
      done: [
        ["add", 205, 3],
        ["add", 404, 1],
        ['we"ird', 500, 1500],
      ],
    });
    b.exit(null, "SIGKILL");
    fakeDrone(m, 103).handle.send({ type: "shutdown", graceful: true, reason: "spare" });
    m.failure({ kind: "overload" });
    m.online(false);
    m.online(true);

    const text = renderMetrics({ metrics: m, backlog: () => 7, processStart: 1700000000 });
    const parsed = parse(text);
    for (const f of parsed) {
      expect(f.help.length).toBeGreaterThan(0);
      expect(f.type).not.toBe("UNTYPED");
    }
    expect(parsed.map((f) => f.name).sort()).toEqual(Object.values(MetricName).sort());

    expect(family(text, MetricName.info).metrics).toEqual([
      { labels: { service: "opensrf.math", version: expect.any(String) }, value: "1" },
    ]);
    expect(family(text, MetricName.processStart).metrics).toEqual([{ value: "1700000000" }]);
    const drones = Object.fromEntries(family(text, MetricName.drones).metrics.map((s) => [s.labels!.state, s.value]));
    expect(drones).toEqual({ starting: "0", idle: "1", busy: "0", retiring: "1" });
    const spawns = Object.fromEntries(family(text, MetricName.spawns).metrics.map((s) => [s.labels!.cause, s.value]));
    expect(spawns).toEqual({ min_children: "1", demand: "2", spare: "0", replace: "0" });
    const retires = Object.fromEntries(family(text, MetricName.retires).metrics.map((s) => [s.labels!.cause, s.value]));
    expect(retires).toEqual({ spare: "1", reload: "0", shutdown: "0" });
    const exits = Object.fromEntries(family(text, MetricName.exits).metrics.map((s) => [s.labels!.cause, s.value]));
    expect(exits).toMatchObject({ killed: "1", crash: "0", max_requests: "0", hung: "0" });
    expect(family(text, MetricName.accepted).metrics).toEqual([{ value: "1" }]);
    expect(family(text, MetricName.requests).metrics).toEqual([
      { labels: { method: "add", status: "205" }, value: "1" },
      { labels: { method: "add", status: "404" }, value: "1" },
      { labels: { method: 'we"ird', status: "500" }, value: "1" },
    ]);
    const d = family(text, MetricName.duration).metrics[0]!;
    expect(d.count).toBe("3");
    expect(Number(d.sum)).toBeCloseTo(1.504, 6);
    expect(d.buckets).toMatchObject({ "0.005": "2", "1": "2", "2.5": "3", "+Inf": "3" });
    expect(family(text, MetricName.backlog).metrics).toEqual([{ value: "7" }]);
    expect(family(text, MetricName.overload).metrics).toEqual([{ value: "1" }]);
    expect(family(text, MetricName.reconnects).metrics).toEqual([{ value: "1" }]);
    const lost = Object.fromEntries(family(text, MetricName.lost).metrics.map((s) => [s.labels!.reason, s.value]));
    expect(lost).toEqual({ died: "0", timeout: "0", shutdown: "0" });
  });

  test("with a host, every sample carries it; each router has its registration and re-registrations", () => {
    const m = new PoolMetrics("opensrf.math");
    fakeDrone(m, 1).say({ type: "available", served: 1, rssBytes: 1, done: [["add", 205, 3]] });
    const text = renderMetrics({
      metrics: m,
      backlog: () => 0,
      host: "hostb",
      routers: () => [
        {
          router: "router@private.localhost/router",
          registered: true,
          reregistrations: { bounce: 1, probe: 2, reconnect: 0 },
        },
        {
          router: "router@public.localhost/router",
          registered: false,
          reregistrations: { bounce: 0, probe: 0, reconnect: 3 },
        },
      ],
    });
    // Read off the text itself: the parser drops the labels of histogram samples.
    const samples = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    expect(samples.length).toBeGreaterThan(20);
    for (const line of samples) expect(line).toMatch(/^[a-z_]+\{host="hostb"[,}]/);
    const registered = family(text, MetricName.routerRegistered).metrics.map((s) => [s.labels!.router, s.value]);
    expect(registered).toEqual([
      ["router@private.localhost/router", "1"],
      ["router@public.localhost/router", "0"],
    ]);
    const again = family(text, MetricName.reregistrations).metrics.map(
      (s) => `${s.labels!.router} ${s.labels!.cause} ${s.value}`,
    );
    expect(again).toEqual([
      "router@private.localhost/router bounce 1",
      "router@private.localhost/router probe 2",
      "router@private.localhost/router reconnect 0",
      "router@public.localhost/router bounce 0",
      "router@public.localhost/router probe 0",
      "router@public.localhost/router reconnect 3",
    ]);
  });

  test("buckets of the duration histogram never decrease", () => {
    const m = new PoolMetrics("s");
    const a = fakeDrone(m, 1);
    a.say({
      type: "available",
      served: 1,
      rssBytes: 1,
      done: Array.from({ length: 50 }, (_, i) => ["m", 205, i * 97]),
    });
    const buckets = family(renderMetrics({ metrics: m, backlog: () => 0 }), MetricName.duration).metrics[0]!.buckets!;
    // Object keys that look like integers come first: order by the bound itself.
    const values = Object.entries(buckets)
      .sort(([a], [b]) => (a === "+Inf" ? Infinity : Number(a)) - (b === "+Inf" ? Infinity : Number(b)))
      .map(([, v]) => Number(v));
    for (let i = 1; i < values.length; i++) expect(values[i]!).toBeGreaterThanOrEqual(values[i - 1]!);
    expect(buckets["+Inf"]).toBe("50");
  });
});
