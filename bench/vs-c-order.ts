/**
 * The cases of bench/vs-c.ts and the order its cells run in within a pool set.
 */

/** The calls bench/vs-c.ts times. */
export type Case = "echo" | "add" | "session" | "midEcho" | "bigEcho";

/**
 * Cases only ours runs: C cannot take a 1 MB request (see MID_ECHO_BYTES in bench/relay.ts).
 * Their requests pass through the shared C router all the same, which is why they run last.
 */
export const ONE_SIDED: ReadonlySet<Case> = new Set<Case>(["bigEcho"]);

/**
 * The cells of a pool set in the order they run: those both sides run, with more callers than
 * max_children after the rest, then those only ours runs.
 *
 * Crowded cells late: with requests queued (every drone busy), OpenSRF 3.3's C listener hands
 * out one queued request per message it receives or per second without one (osrf_prefork.c,
 * prefork_run: client_recv(…, 1)): its queue never shrinks while traffic flows, and what a
 * closed loop leaves queued when a window closes drains at one request a second. A window at
 * c=1 after one at c=32 would wait for those seconds, so C's listener is restarted after its
 * crowded windows (and stale CONNECTs would pin its drones until the keepalive). OpenSRF
 * main's listener leaves them in the Redis list instead; the same order serves there too.
 *
 * One-sided cells last: the C router clears each connection's parse buffers before every
 * stanza with a memset of their whole allocated size, and they never shrink. After one 1 MB
 * request to a class, every later request to that class costs the router a memset of about
 * that size (its CPU per echo call doubled), for as long as the class has a node; a pool set
 * starts with both services restarted, so with fresh class connections in the router.
 */
export function cellOrder(cases: Record<Case, number[]>, maxChildren: number): Array<[Case, number]> {
  const all = (Object.entries(cases) as Array<[Case, number[]]>).flatMap(([k, cs]) =>
    cs.map((c) => [k, c] as [Case, number]),
  );
  const both = all.filter(([k]) => !ONE_SIDED.has(k));
  return [
    ...both.filter(([, c]) => c <= maxChildren),
    ...both.filter(([, c]) => c > maxChildren),
    ...all.filter(([k]) => ONE_SIDED.has(k)),
  ];
}
