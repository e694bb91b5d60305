/**
 * Registration with the routers: periodic re-registration (register_interval) and quick
 * re-sends when a registration bounces because the router is gone — how a listener finds
 * its way back to a router that restarted.
 */
import { describe, expect, test } from "bun:test";
import type { RouterTarget } from "../../src/config/types.ts";
import { Registration } from "../../src/prefork/registration.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";
import { ManualClock } from "../../src/testing/manual-clock.ts";
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
  return {
    to: "opensrf@localhost/svc_listener_h_1.0_1",
    from,
    thread: "",
    body: "",
    routerFrom: "",
    routerTo: "",
    routerClass: "",
    routerCommand,
    xid: "",
    error: { type: "cancel", condition: "service-unavailable" },
  };
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
