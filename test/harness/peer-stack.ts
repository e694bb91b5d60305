/**
 * The life cycle the interop files give their real OpenSRF stack (devkit/opensrf): built if
 * needed, started before a describe block's tests, stopped after them.
 */
import { afterAll, beforeAll } from "bun:test";
import { ensurePeer, type PeerRelease } from "../../devkit/opensrf/peer.ts";
import type { OpenSrfStack } from "../../devkit/opensrf/stack.ts";

/**
 * Ensures the peer of `release` is built (a cold cache means apt plus a full autotools
 * build: minutes, once per machine), then starts a stack with `start` before the enclosing
 * block's tests (and hands it to `started`, e.g. to keep it in a variable), and stops it
 * after them. Call it inside the `describe.skipIf(!HAVE_PEER)` block, so that nothing is
 * built where the peer is not available.
 */
export function usePeerStack(
  start: () => Promise<OpenSrfStack>,
  started: (stack: OpenSrfStack) => void,
  release: PeerRelease = "3.3",
): void {
  let stack: OpenSrfStack | undefined;
  beforeAll(async () => {
    await ensurePeer(release);
    stack = await start();
    started(stack);
  }, 15 * 60_000);
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);
}
