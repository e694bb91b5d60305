/**
 * opensrf.stream — streaming and failure cases, for trying clients and for tests:
 *
 * - `count` [n, delayMs?]: streams 1..n, one RESULT each (optionally waiting between them);
 * - `big` [bytes]: one string of that many characters (large enough ones travel as partial
 *   messages);
 * - `slow` [ms]: waits, then returns ms;
 * - `fail`: always throws;
 * - `hang`: never answers;
 * - `bad_json` [kind?]: returns a value that is not JSON ("bigint" — the default —,
 *   "cycle" or "function"), which the host refuses with an exception.
 */
import { defineMethod, defineService, type JsonValue, MethodException, StatusCode } from "osrf-prefork";

const MAX_COUNT = 1_000_000;
const MAX_BYTES = 64 * 1024 * 1024;
const MAX_SLOW_MS = 10 * 60 * 1000;

function integerParam(method: string, name: string, v: JsonValue | undefined, max: number, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    throw new MethodException(StatusCode.BADREQUEST, `${method}: ${name} must be an integer from 0 to ${max}`);
  }
  return v;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const count = defineMethod<[JsonValue, JsonValue?]>({
  name: "count",
  argc: 1,
  stream: true,
  notes: "Streams the numbers 1..n, one result each. PARAMS(n, [delayMs])",
  async *handler(_ctx, n, delay) {
    const last = integerParam("count", "n", n, MAX_COUNT);
    const wait = integerParam("count", "delayMs", delay, MAX_SLOW_MS, 0);
    for (let i = 1; i <= last; i++) {
      if (wait > 0 && i > 1) await sleep(wait);
      yield i;
    }
  },
});

const big = defineMethod<[JsonValue]>({
  name: "big",
  argc: 1,
  notes: "Returns one string of the given length, for partial-message tests. PARAMS(bytes)",
  handler: (_ctx, bytes) => "x".repeat(integerParam("big", "bytes", bytes, MAX_BYTES)),
});

const slow = defineMethod<[JsonValue]>({
  name: "slow",
  argc: 1,
  notes: "Waits the given number of milliseconds, then returns it. PARAMS(ms)",
  async handler(_ctx, ms) {
    const wait = integerParam("slow", "ms", ms, MAX_SLOW_MS);
    await sleep(wait);
    return wait;
  },
});

const fail = defineMethod({
  name: "fail",
  notes: "Always fails with an error.",
  handler() {
    throw new Error("opensrf.stream fail: failing as asked");
  },
});

const hang = defineMethod({
  name: "hang",
  notes: "Never answers (the caller's timeout is the only way out).",
  handler: () => new Promise<never>(() => {}),
});

const badJson = defineMethod<[JsonValue?]>({
  name: "bad_json",
  notes: 'Returns a value that is not JSON. PARAMS([kind: "bigint" | "cycle" | "function"])',
  handler(_ctx, kind = "bigint") {
    switch (kind) {
      case "bigint":
        return { answer: 42n };
      case "cycle": {
        const node: Record<string, unknown> = { name: "loop" };
        node.self = node;
        return node;
      }
      case "function":
        return [1, () => 2];
      default:
        throw new MethodException(StatusCode.BADREQUEST, `bad_json: unknown kind ${JSON.stringify(kind)}`);
    }
  },
});

export default defineService({
  name: "opensrf.stream",
  methods: [count, big, slow, fail, hang, badJson],
});
