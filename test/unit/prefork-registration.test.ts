/**
 * Registration with the routers: periodic re-registration (register_interval), quick
 * re-sends when a registration bounces because the router is gone, and the registration
 * probe of each router's class JID — how a listener finds its way back to a router that
 * restarted.
 */
import { describe, expect, test } from "bun:test";
import { completeBusMessage } from "../../src/bus/message.ts";
import type { RouterTarget } from "../../src/config/types.ts";
import { Registration } from "../../src/prefork/registration.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";
import { ManualClock } from "../../src/testing/manual-clock.ts";
import type { ProbeAnswer } from "../../src/xmpp/probe.ts";
import type { Stanza } from "../../src/xmpp/types.ts";
import { FakeTransport } from "../harness/prefork-fakes.ts";

const ROUTERS: RouterTarget[] = [
  { name: "router", domain: "a.localhost" },
  { name: "router", domain: "b.localhost" },
];

function setup(intervalSeconds = 30) {
  const transport = new FakeTransport();
  const clock = new ManualClock();
  const log = new RecordingLogger();
  const reg = new Registration(transport, "svc", ROUTERS, log, { intervalSeconds, clock });
  const registers = (to?: string) =>
    transport.sent.filter((s) => s.routerCommand === "register" && (!to || s.to === to)).length;
  return { transport, clock, log, reg, registers };
}

/** A bounce as prosody delivers it: from the JID we wrote to, no body, an error. */
function bounce(from: string, routerCommand = ""): Stanza {
  return completeBusMessage(
    {
      to: "opensrf@localhost/svc_listener_h_1.0_1",
      routerCommand,
      error: { type: "cancel", condition: "service-unavailable" },
    },
    from,
  );
}

describe("Registration", () => {
  test("registers with every router, then again every register_interval while registered", () => {
    const { clock, reg, registers } = setup(30);
    reg.register();
    expect(registers()).toBe(2);
    clock.advance(29_999);
    expect(registers()).toBe(2);
    clock.advance(1);
    expect(registers()).toBe(4);
    clock.advance(60_000);
    expect(registers()).toBe(8);
  });

  test("unregister stops the periodic registration; stop() cancels every timer", () => {
    const { clock, reg, registers, transport } = setup(5);
    reg.register();
    reg.unregister();
    expect(transport.sent.map((s) => s.routerCommand)).toEqual(["register", "register", "unregister", "unregister"]);
    clock.advance(60_000);
    expect(registers()).toBe(2);
    expect(clock.pending).toBe(0);
    reg.register();
    expect(clock.pending).toBe(1);
    reg.stop();
    expect(clock.pending).toBe(0);
  });

  test("a new register_interval (SIGHUP) reschedules the periodic registration", () => {
    const { clock, reg, registers } = setup(30);
    reg.register();
    clock.advance(10_000);
    reg.setInterval(5);
    clock.advance(5000);
    expect(registers()).toBe(4);
    reg.setInterval(0);
    clock.advance(600_000);
    expect(registers()).toBe(4);
  });

  test("register_interval 0: no periodic registration", () => {
    const { clock, reg, registers } = setup(0);
    reg.register();
    clock.advance(600_000);
    expect(registers()).toBe(2);
  });

  test("a bounced registration is re-sent to that router on a growing backoff until one goes through", () => {
    const { clock, reg, registers, log } = setup(30);
    reg.register();
    const a = "router@a.localhost/router";
    expect(reg.onBounce(bounce(a))).toBe(true);
    expect(log.messages("warn")).toEqual([
      "svc: registration with router router@a.localhost/router bounced (cancel/service-unavailable): the router is not online; registering again in 0.5 s",
    ]);
    // Retries: 0.5 s, then (bouncing again) 1 s, 2 s, 4 s, 5 s, 5 s …
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = registers(a);
      const t0 = clock.now();
      while (registers(a) === before) clock.advance(100);
      times.push(clock.now() - t0);
      if (i < 5) reg.onBounce(bounce(a));
    }
    expect(times).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
    // Only the first bounce of an outage is a warning; the rest are debug lines.
    expect(log.messages("warn")).toHaveLength(1);
    // The last one did not bounce: registered again, retries stop.
    clock.advance(2000);
    expect(log.lines.at(-1)?.level).toBe("info");
    expect(log.lines.at(-1)?.msg).toMatch(
      /^svc: registered again with router router@a\.localhost\/router \(6 registration\(s\) bounced over [\d.]+ s\)$/,
    );
    const n = registers(a);
    clock.advance(30_000 - clock.now() - 1); // up to just before the next periodic registration
    expect(registers(a)).toBe(n);
    // The other router was never affected.
    expect(registers("router@b.localhost/router")).toBe(1);
  });

  test("the retry cap never exceeds register_interval", () => {
    const { clock, reg, registers } = setup(1);
    reg.register();
    const a = "router@a.localhost/router";
    for (let i = 0; i < 5; i++) {
      reg.onBounce(bounce(a));
      const before = registers(a);
      const t0 = clock.now();
      while (registers(a) === before) clock.advance(100);
      expect(clock.now() - t0).toBeLessThanOrEqual(1000);
    }
  });

  test("a message from the router ends the outage at once", () => {
    const { clock, reg, registers, log } = setup(30);
    reg.register();
    reg.onBounce(bounce("router@a.localhost/router"));
    reg.heard("router@a.localhost/svc");
    expect(log.lines.at(-1)).toMatchObject({
      level: "info",
      msg: "svc: router router@a.localhost/router forwards to us again",
    });
    const n = registers();
    clock.advance(10_000);
    expect(registers()).toBe(n);
  });

  test("bounces that are not failed registrations are left to the caller, or ignored when not registered", () => {
    const { clock, reg, registers } = setup(30);
    // Not from one of our routers, or from a router's class connection.
    expect(reg.onBounce(bounce("opensrf@localhost/_client_1"))).toBe(false);
    expect(reg.onBounce(bounce("router@a.localhost/svc"))).toBe(false);
    // Bare-JID bounces (some servers) are ours.
    reg.register();
    expect(reg.onBounce(bounce("router@a.localhost"))).toBe(true);
    reg.unregister();
    // Unregistered: bounces of our (un)registrations are noted, nothing is re-sent.
    expect(reg.onBounce(bounce("router@a.localhost/router", "unregister"))).toBe(true);
    expect(reg.onBounce(bounce("router@a.localhost/router"))).toBe(true);
    const n = registers();
    clock.advance(60_000);
    expect(registers()).toBe(n);
    expect(clock.pending).toBe(0);
  });
});

/** A transport that records probes and lets the test answer each one. */
class ProbingTransport extends FakeTransport {
  probes: Array<{ to: string; service: string; timeoutMs: number; answer: (a: ProbeAnswer) => void }> = [];
  probe(to: string, service: string, timeoutMs: number): Promise<ProbeAnswer> {
    return new Promise((answer) => this.probes.push({ to, service, timeoutMs, answer }));
  }
}

/** Lets the probe answers' promise callbacks run. */
const settle = async () => {
  for (let i = 0; i < 3; i++) await Promise.resolve();
};

function probing(probeSeconds = 1.5) {
  const transport = new ProbingTransport();
  const clock = new ManualClock();
  const log = new RecordingLogger();
  const reg = new Registration(transport, "svc", ROUTERS, log, { intervalSeconds: 30, probeSeconds, clock });
  const registers = (to?: string) =>
    transport.sent.filter((s) => s.routerCommand === "register" && (!to || s.to === to)).length;
  const A = "router@a.localhost/router";
  /** Answers the newest probe sent to router a's class JID. */
  const answerA = async (a: ProbeAnswer) => {
    const p = transport.probes.filter((x) => x.to === "router@a.localhost/svc").at(-1);
    if (!p) throw new Error("no probe to router a");
    p.answer(a);
    await settle();
  };
  return { transport, clock, log, reg, registers, A, answerA };
}

describe("Registration probes", () => {
  test("every router_probe_interval one probe per router goes to its class JID; a yes changes nothing", async () => {
    const { transport, clock, reg, registers, answerA } = probing(1.5);
    reg.register();
    clock.advance(1499);
    expect(transport.probes).toHaveLength(0);
    clock.advance(1);
    expect(transport.probes.map((p) => [p.to, p.service, p.timeoutMs])).toEqual([
      ["router@a.localhost/svc", "svc", 1125],
      ["router@b.localhost/svc", "svc", 1125],
    ]);
    await answerA({ kind: "registered" });
    // Router b has not answered yet: no second probe to it while the first is on its way.
    clock.advance(1500);
    expect(transport.probes.filter((p) => p.to === "router@b.localhost/svc")).toHaveLength(1);
    expect(transport.probes.filter((p) => p.to === "router@a.localhost/svc")).toHaveLength(2);
    expect(registers()).toBe(2);
    expect(reg.states().map((s) => s.registered)).toEqual([true, true]);
  });

  test("a silent router is probed every interval: an unanswered probe times out before the next is due", async () => {
    const clock = new ManualClock();
    // As the XMPP connection does: the probe's own timer starts after a turn of the promise
    // queue, i.e. after the registration has set its next tick.
    class SilentTransport extends ProbingTransport {
      override probe(to: string, service: string, timeoutMs: number): Promise<ProbeAnswer> {
        this.probes.push({ to, service, timeoutMs, answer: () => {} });
        return Promise.resolve().then(
          () => new Promise((answer) => clock.setTimeout(() => answer({ kind: "no-answer" }), timeoutMs)),
        );
      }
    }
    const transport = new SilentTransport();
    const reg = new Registration(transport, "svc", ROUTERS, new RecordingLogger(), {
      intervalSeconds: 30,
      probeSeconds: 1,
      clock,
    });
    reg.register();
    await settle();
    // In quarter intervals, the promise callbacks running between them as they would.
    for (let i = 0; i < 40; i++) {
      clock.advance(250);
      await settle();
    }
    expect(transport.probes.filter((p) => p.to === "router@a.localhost/svc")).toHaveLength(10);
  });

  test("a router that answers 'not one of my nodes' gets our registration at once", async () => {
    const { clock, reg, registers, log, A, answerA } = probing();
    reg.register();
    clock.advance(1500);
    await answerA({ kind: "not-registered" });
    expect(registers(A)).toBe(2);
    expect(registers("router@b.localhost/router")).toBe(1);
    expect(log.messages("warn")).toEqual([
      "svc: router router@a.localhost/router lost our registration: it answered that we are not one of its nodes; registering again",
    ]);
    expect(reg.states()[0]!.reregistrations).toEqual({ bounce: 0, probe: 1, reconnect: 0 });
  });

  test("class JID gone at a router that answers probes: registered again at once", async () => {
    const { clock, reg, registers, A, answerA } = probing();
    reg.register();
    clock.advance(1500);
    await answerA({ kind: "registered" });
    clock.advance(1500);
    await answerA({ kind: "unavailable", condition: "service-unavailable" });
    expect(registers(A)).toBe(2);
  });

  test("class JID gone at a silent router: registered again after 1.5 probe intervals, so the other listeners see the gap", async () => {
    const { clock, reg, registers, log, A, answerA, transport } = probing(2);
    reg.register();
    clock.advance(2000);
    await answerA({ kind: "no-answer" });
    clock.advance(2000);
    await answerA({ kind: "unavailable", condition: "service-unavailable" });
    expect(registers(A)).toBe(1);
    expect(log.messages("warn")[0]).toBe(
      "svc: router router@a.localhost/router lost our registration: its router@a.localhost/svc is gone " +
        "(service-unavailable): it has no node of svc; registering again in 3.00 s (it does not answer probes)",
    );
    expect(reg.states()[0]!.registered).toBe(false);
    // No probe of that router while the re-registration waits.
    const probesToA = () => transport.probes.filter((p) => p.to === "router@a.localhost/svc").length;
    const before = probesToA();
    clock.advance(2999);
    expect(registers(A)).toBe(1);
    expect(probesToA()).toBe(before);
    clock.advance(1);
    expect(registers(A)).toBe(2);
    expect(reg.states()[0]!.registered).toBe(true);
  });

  test("no answer changes nothing; while a bounce outage runs the router is not probed; unregister stops probing", async () => {
    const { clock, reg, registers, A, answerA, transport } = probing();
    reg.register();
    clock.advance(1500);
    await answerA({ kind: "no-answer" });
    expect(registers()).toBe(2);
    reg.onBounce(bounce(A));
    const probesToA = () => transport.probes.filter((p) => p.to === "router@a.localhost/svc").length;
    const before = probesToA();
    clock.advance(1500);
    expect(probesToA()).toBe(before);
    expect(reg.states()[0]).toMatchObject({
      registered: false,
      reregistrations: { bounce: 1, probe: 0, reconnect: 0 },
    });
    reg.unregister();
    const all = transport.probes.length;
    clock.advance(60_000);
    expect(transport.probes.length).toBe(all);
    expect(clock.pending).toBe(0);
  });

  test("router_probe_interval 0 never probes; a reconnect is counted for every router", () => {
    const { clock, reg, transport } = probing(0);
    reg.register();
    reg.register("reconnect");
    clock.advance(60_000);
    expect(transport.probes).toHaveLength(0);
    expect(reg.states().map((s) => s.reregistrations.reconnect)).toEqual([1, 1]);
  });

  test("a router whose class JID answers every probe with an error, though registrations reach it, is probed no more", async () => {
    const { clock, reg, registers, log, A, answerA, transport } = probing(1);
    reg.register();
    clock.advance(1000);
    await answerA({ kind: "registered" });
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      await answerA({ kind: "unavailable", condition: "service-unavailable" });
    }
    expect(registers(A)).toBe(4); // the first and three re-registrations, none bounced
    clock.advance(1000);
    await answerA({ kind: "unavailable", condition: "service-unavailable" });
    expect(registers(A)).toBe(4);
    expect(log.messages("warn").at(-1)).toBe(
      "svc: router router@a.localhost/router answers every registration probe with an error (service-unavailable) " +
        "although our registrations reach it; not probing it any more (register_interval still applies)",
    );
    const probesToA = () => transport.probes.filter((p) => p.to === "router@a.localhost/svc").length;
    const n = probesToA();
    clock.advance(10_000);
    expect(probesToA()).toBe(n);
    // A new registration (SIGUSR2, reconnect) probes it again.
    reg.register("reconnect");
    clock.advance(1000);
    expect(probesToA()).toBe(n + 1);
  });
});
