#!/usr/bin/env bun
/**
 * Soak: a long, steady load on one prefork service whose drones recycle constantly
 * (max_requests 50), checking that nothing accumulates — file descriptors, processes,
 * listener and router memory — and that no request is lost.
 *
 *   npm run soak                                  # 100,000 requests (several minutes)
 *   npm run soak -- --requests 20000 --concurrency 16 --max-requests 50
 *   OSRF_TEST_XMPP=ejabberd npm run soak          # against ejabberd instead of prosody
 *
 * Everything runs on loopback in a private temp dir and is stopped at the end (Ctrl-C too).
 * Prints one progress line per 10,000 requests and a summary; exits 1 when a check fails.
 * The soak itself lives in devkit/soak.ts; test/integration/fault-soak.test.ts runs a short
 * version of it in CI.
 */
import { describeLoad } from "../devkit/load.ts";
import { DEFAULT_SOAK, describeReading, runSoak, type SoakOptions } from "../devkit/soak.ts";

function argNumber(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`soak: --${name} needs a positive integer\n`);
    process.exit(2);
  }
  return v;
}

const o: SoakOptions = {
  ...DEFAULT_SOAK,
  requests: argNumber("requests", DEFAULT_SOAK.requests),
  concurrency: argNumber("concurrency", DEFAULT_SOAK.concurrency),
  maxRequests: argNumber("max-requests", DEFAULT_SOAK.maxRequests),
  progress: (line) => process.stdout.write(`soak: ${line}\n`),
};
const started = Date.now();
process.stdout.write(
  `soak: ${o.requests} requests, concurrency ${o.concurrency}, max_requests ${o.maxRequests}, ` +
    `${o.minChildren}..${o.maxChildren} drones, XMPP server ${process.env.OSRF_TEST_XMPP || "prosody"}\n`,
);
const report = await runSoak(o);
const r = report;
process.stdout.write(
  [
    `soak: done in ${((Date.now() - started) / 1000).toFixed(0)} s`,
    `soak: load: ${describeLoad(r.load)}`,
    `soak: ~${r.dronesStarted} drones started (one per ${o.maxRequests} requests)`,
    `soak: before: ${describeReading(r.before)}`,
    `soak: after:  ${describeReading(r.after)}`,
    `soak: listener fds by kind before ${JSON.stringify(r.listenerFdKinds.before)} after ${JSON.stringify(r.listenerFdKinds.after)}`,
    r.failures.length
      ? `soak: FAILED: ${r.failures.join("; ")}`
      : "soak: OK: nothing lost, no fd, process or memory growth",
    "",
  ].join("\n"),
);
process.exit(r.failures.length ? 1 : 0);
