/**
 * Scale-out behind the real OpenSRF 3.3 C router (devkit/opensrf): the same four hosts as
 * scaleout-prefork-router.test.ts — router and ejabberd node 1 on A, node 2 and a serve on
 * B, a serve on C (node 2), callers on D (node 1) — with `opensrf_router` on host A.
 *
 * What differs from our router is measured here: a restart of the C router (which says
 * nothing when it logs in and answers no probe) and a host lost under load (the C router
 * re-sends only the last message it gave a dead node).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { LoadRecord } from "../../devkit/netns/agent-protocol.ts";
import { netnsAvailableForTests } from "../../devkit/netns/network.ts";
import { hostOf, ScaleOutStack } from "../../devkit/netns/scaleout.ts";
import { peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import {
  addBatch,
  addLoad,
  addSessions,
  bothRegistered,
  byHost,
  byOutcome,
  correct,
  cRouterForwards,
  expectSpreadOverBothHosts,
  listenerOn,
  readCRouterLog,
  reregistrations,
  reregistrationsSince,
} from "../harness/scaleout.ts";

const WHAT = "scale-out tests (real C router)";
const HAVE = netnsAvailableForTests(WHAT) && peerAvailableForTests(WHAT);

let s: ScaleOutStack;

describe.skipIf(!HAVE)(WHAT, () => {
  beforeAll(async () => {
    // Cold cache: ensurePeer() builds OpenSRF first (about a minute).
    // register_interval 600: after the router restart only the probes can bring the listeners back.
    s = await ScaleOutStack.start({ router: "c", unix: { register_interval: 600 } });
  }, 300_000);

  afterAll(async () => {
    await s?.stop();
  }, 60_000);

  test("requests spread across both hosts; sessions stay on their drone", async () => {
    const records = await addBatch(s, "spread", 300);
    const hosts = expectSpreadOverBothHosts(records);
    console.log(`scale-out spread (C router): ${JSON.stringify(hosts)} of ${records.length}`);
    const sessions = await addSessions(s, 8, 4, 1);
    for (const x of sessions) {
      expect(x.errors).toEqual([]);
      expect(x.froms).toEqual(Array(4).fill(x.remote));
    }
    expect(new Set(sessions.map((x) => hostOf(x.remote)))).toEqual(new Set(["hostb", "hostc"]));
  }, 90_000);

  test("the C router restarted at once learns every service again within 5 s, with no operator action", async () => {
    const countsBefore = await reregistrations(s);
    const stoppedAt = performance.now();
    await s.stopRouter("SIGTERM");
    await s.startRouter();
    const onlineAt = performance.now();
    const firstMs = await s.waitFor("the service to be registered again", 30_000, async () =>
      (await s.listenerNodes()).some((j) => hostOf(j) !== ""),
    );
    const allMs = await s.waitFor("both listeners to be registered again", 30_000, () => bothRegistered(s));
    // What brought each listener back: a probe (or a registration the probe sent, bouncing
    // while the router was away); counted by each listener.
    const back = await reregistrationsSince(s, countsBefore);
    for (const b of back) expect(b.probe + b.bounce).toBeGreaterThan(0);
    const causes = back.map((b) => `${b.host} probe +${b.probe} bounce +${b.bounce}`);
    console.log(
      `scale-out router restart (C): stopped and online again in ${(onlineAt - stoppedAt).toFixed(0)} ms; ` +
        `${s.service} registered again ${(firstMs + 0).toFixed(0)} ms after, both listeners after ` +
        `${allMs.toFixed(0)} ms more; re-registrations: ${causes.join(", ")}`,
    );
    expect(firstMs + allMs).toBeLessThan(5000);
    const records = await addBatch(s, "after-restart", 200);
    expect(records.filter((r) => !correct(r))).toEqual([]);
    expect(Object.keys(byHost(records)).sort()).toEqual(["hostb", "hostc"]);
  }, 90_000);

  test("losing host C under load: what the C router loses beyond what was inside C", async () => {
    const load = addLoad(s, "closs", { timeout: 8 });
    await Bun.sleep(3000);
    const cListener = (await listenerOn(s, "hostc"))!;
    expect(cListener).toBeDefined();
    const { signalled, at: killedAt } = await s.host("c").killAll("SIGKILL");
    const gone = s.agent.untilGone(cListener, 10, 30_000);
    const droppedMs = await s.waitFor("the C router to drop host C", 30_000, async () =>
      readCRouterLog(s.routerLog).some((l) => l.msg === `Removing router node ${cListener}`),
    );
    const goneMs = await gone;
    await Bun.sleep(3000);
    await s.agent.stopLoad(load.id);
    const { records } = await load.reply;

    const lines = readCRouterLog(s.routerLog);
    const forwards = cRouterForwards(lines);
    const bounced = new Set(lines.filter((l) => l.msg.startsWith("Received network layer error")).map((l) => l.xid));
    const ignored = lines.filter((l) => l.msg.startsWith("network error occurred after we removed")).length;
    const lost = records.filter((r) => r.outcome === "lost");
    const lastTo = (r: LoadRecord) => forwards.get(r.xid)?.at(-1)?.to;
    // Every unanswered request was handed to host C's listener, and not sent on elsewhere.
    const elsewhere = lost.filter((r) => lastTo(r) !== cListener);
    for (const r of elsewhere) {
      const trail = lines.filter((l) => l.xid === r.xid).map((l) => `${l.ts - killedAt} ms: ${l.msg}`);
      console.log(`lost, not handed to C: ${r.xid} sent ${r.sent - killedAt} ms after the kill; ${trail.join(" | ")}`);
    }
    expect(elsewhere).toEqual([]);
    // Of those, the ones that bounced back (sent to C after it died) and that the C router did not re-send.
    const droppedByRouter = lost.filter((r) => bounced.has(r.xid)).length;
    const resent = [...forwards.values()].filter((f) => f.length > 1).length;
    const last = lost.reduce((m, r) => Math.max(m, r.sent), killedAt);
    // After the router dropped C (its log has whole seconds only: 2 s of margin), all answered by B.
    const after = records.filter((r) => r.sent > last + 2000);
    expect(after.length).toBeGreaterThan(50);
    expect(after.filter((r) => !correct(r))).toEqual([]);
    expect(new Set(after.map((r) => hostOf(r.from)))).toEqual(new Set(["hostb"]));
    console.log(
      `scale-out lost host (kill -9 of ${signalled} processes on host C, C router): lost ${lost.length} of ` +
        `${records.length}, all handed to host C's listener: ${lost.length - droppedByRouter} inside C when it died, ` +
        `${droppedByRouter} sent to it after it died whose bounce the C router dropped (it re-sends only the last ` +
        `message it gave a node; ${ignored} bounce(s) ignored, ${resent} message(s) re-sent to B). Callers of both ` +
        `learned it from their own timeout (8 s). Outcomes: ${JSON.stringify(byOutcome(records))}. Node 2 dropped ` +
        `C's sessions ${goneMs} ms after the kill; the C router logged dropping C ${droppedMs.toFixed(0)} ms after ` +
        `the kill (at the first forward that bounced); the last request lost was sent ${last - killedAt} ms after it.`,
    );
    expect(goneMs).toBeGreaterThanOrEqual(0);
    expect(goneMs).toBeLessThan(10_000);
  }, 180_000);

  test("host C comes back and gets traffic again from the C router", async () => {
    const t0 = performance.now();
    await s.startServe("c");
    const backMs = performance.now() - t0;
    const records = await addBatch(s, "back", 300);
    expect(records.filter((r) => !correct(r))).toEqual([]);
    const hosts = byHost(records);
    console.log(
      `scale-out host back (C router): registered ${backMs.toFixed(0)} ms after start; ${JSON.stringify(hosts)}`,
    );
    expect(hosts.hostc).toBeGreaterThan(records.length * 0.3);
  }, 90_000);
});
