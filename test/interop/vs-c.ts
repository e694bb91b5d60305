/**
 * Shared by srfsh-vs-c, perl-vs-c and serve-vs-main-redis: one real OpenSRF stack (3.3:
 * ejabberd; main: redis-server — C router, Perl settings, C opensrf.dbmath and opensrf.math)
 * with `osrf-prefork serve examples/math.ts` as opensrf.tsmath behind the same router, and the
 * masking that makes C's answers and ours comparable. Only names and ids are masked: the
 * service name, and the time and pid parts of drone resources (or Redis inbox addresses).
 */
import { expect } from "bun:test";
import { join, resolve } from "node:path";
import type { PeerRelease } from "../../devkit/opensrf/peer.ts";
import { type OpenSrfStack, startOpenSrfStack } from "../../devkit/opensrf/stack.ts";

/** The real C service. */
export const C = "opensrf.math";
/** Ours: examples/math.ts, which has C math's method names, argc and notes. */
export const OURS = "opensrf.tsmath";

const ROOT = resolve(import.meta.dir, "../..");
const MATH_APP = join(ROOT, "examples/math.ts");

/** C's OSRF_MSG_CHUNK_SIZE, the default max_chunk_size of both servers. */
export const CHUNK_SIZE = 51200;

/** Starts the stack and our service; waits until both math services answer. */
export async function startMathStack(release: PeerRelease = "3.3"): Promise<OpenSrfStack> {
  const stack = await startOpenSrfStack({
    release,
    services: [
      {
        name: OURS,
        language: "typescript",
        implementation: MATH_APP,
        // The same pool as the stack's C math.
        unixConfig: { minChildren: 1, maxChildren: 3, minSpareChildren: 1, maxSpareChildren: 2 },
      },
    ],
  });
  try {
    await stack.servePrefork(OURS, MATH_APP);
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return stack;
}

/** Polls `cond` until it holds; the bound only keeps a broken run from hanging. */
export async function waitFor(cond: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

/** `text` with every occurrence of the service's name replaced by `S`. */
export function maskService(text: string, service: string): string {
  return text.split(service).join("S");
}

/** A drone JID of `service` (`opensrf@localhost/<service>_drone_<host>_<time>_<pid>`)? */
export function isDroneOf(jid: string, service: string): boolean {
  return jid.startsWith(`opensrf@localhost/${service}_drone_`);
}

/** A Redis inbox address with its pid and random part replaced: `opensrf:client:<user>:<domain>:<host>:<pid>:<rand>`. */
export function maskAddress(address: string): string {
  return address.replace(/:\d+:[0-9a-f]+$/, ":<pid>:<rand>");
}

/** A JID with the service masked and the time and pid of its resource replaced: the host stays. */
export function maskJid(jid: string, service: string): string {
  return maskService(jid, service).replace(/_\d+\.\d+_\d+$/, "_<time>_<pid>");
}

/** What C's osrfXmlEscapingLength adds to a text's length: 3 per < or >, 4 per &, 11 per ". */
export function escapedCost(text: string): number {
  let cost = text.length;
  for (const ch of text) {
    if (ch === "<" || ch === ">") cost += 3;
    else if (ch === "&") cost += 4;
    else if (ch === '"') cost += 11;
  }
  return cost;
}

/** One osrfMessage of a body, as parsed JSON. */
export interface WireMessage {
  __c: string;
  __p: {
    threadTrace: string;
    type: string;
    payload?: { __c: string; __p: { status: string; statusCode: string; content?: unknown } };
  };
}

/** The osrfMessages of each body. */
export function messagesOf(bodies: string[]): WireMessage[][] {
  return bodies.map((b) => JSON.parse(b) as WireMessage[]);
}

/** Payload classes per body, e.g. `[["osrfResult", "osrfConnectStatus"]]`. */
export function shapeOf(bodies: string[]): string[][] {
  return messagesOf(bodies).map((msgs) => msgs.map((m) => m.__p.payload?.__c ?? m.__p.type));
}

/**
 * Checks what a client got for a CONNECT and two requests in one session: the CONNECT's
 * "Connection Successful" (threadTrace 0), then a RESULT and Request Complete for each
 * request, every body from the one drone the session is pinned to.
 */
export function expectSessionOfTwoRequests(side: { bodies: string[]; senders: string[] }): void {
  expect(shapeOf(side.bodies)).toEqual([
    ["osrfConnectStatus"],
    ["osrfResult", "osrfConnectStatus"],
    ["osrfResult", "osrfConnectStatus"],
  ]);
  expect(JSON.parse(side.bodies[0]!)[0].__p).toMatchObject({
    threadTrace: "0",
    type: "STATUS",
    payload: { __p: { status: "Connection Successful", statusCode: "200" } },
  });
  expect(new Set(side.senders).size).toBe(1);
}

/** The `content` of every osrfResultPartial, in order. */
export function partialPieces(bodies: string[]): string[] {
  return messagesOf(bodies)
    .flat()
    .filter((m) => m.__p.payload?.__c === "osrfResultPartial")
    .map((m) => m.__p.payload?.__p.content as string);
}

/** Each message of the bodies as JSON text with its result content (if any) replaced by "<c>". */
export function envelopesOf(bodies: string[]): string[] {
  return messagesOf(bodies)
    .flat()
    .map((m) => {
      const payload = m.__p.payload;
      if (payload?.__p.content === undefined) return JSON.stringify(m);
      return JSON.stringify({
        ...m,
        __p: { ...m.__p, payload: { ...payload, __p: { ...payload.__p, content: "<c>" } } },
      });
    });
}

/** JSON text as C's encoder writes it: every non-ASCII UTF-16 unit as a lowercase `\uxxxx`. */
export function cJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u0080-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Bodies with each partial's content (a JSON string literal in the body) replaced by "<piece>". */
export function blankPieces(bodies: string[]): string[] {
  return bodies.map((b) => b.replace(/("__c":"osrfResultPartial".*?"content":)"(?:[^"\\]|\\.)*"/, '$1"<piece>"'));
}

/**
 * Resolves once the Redis inbox of the client process `pid` (OpenSRF main puts the pid in
 * every inbox address) holds an element that `match` accepts: a wait between the lines of a
 * real client's script, e.g. until its session's drone has sent the keepalive 408. Reads the
 * list as Redis's admin (LRANGE), so the client still gets the element itself.
 */
export async function untilInboxHolds(
  stack: OpenSrfStack,
  pid: number,
  match: (element: string) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    async () => {
      let cursor = "0";
      do {
        const [next, keys] = (await stack.redis.admin([
          "SCAN",
          cursor,
          "MATCH",
          `opensrf:client:*:${pid}:*`,
          "COUNT",
          "1000",
        ])) as [string, string[]];
        cursor = next;
        for (const key of keys) {
          const elements = (await stack.redis.admin(["LRANGE", key, "0", "-1"])) as string[];
          if (elements.some(match)) return true;
        }
      } while (cursor !== "0");
      return false;
    },
    `${what} in the inbox of client ${pid}`,
    timeoutMs,
  );
}

/** A list element carrying the keepalive expiry: STATUS 408 "Disconnected on timeout". */
export function isKeepaliveTimeout(element: string): boolean {
  return /"statusCode":"408"/.test(element) && element.includes("Disconnected on timeout");
}
