/**
 * The life cycle every fault test file gives its {@link FaultStack}, and the probe they use to
 * tell whether a service answers.
 */
import { afterAll, beforeAll } from "bun:test";
import { FaultStack, type FaultStackOptions } from "../../devkit/fault-stack.ts";
import type { OsrfClient } from "../../src/client/types.ts";
import type { JsonValue } from "../../src/protocol/types.ts";

/**
 * Starts a stack before the file's tests (then runs `started`, e.g. to keep it in a variable)
 * and stops it, with everything it started, after them.
 */
export function useFaultStack(opts: FaultStackOptions, started: (stack: FaultStack) => void | Promise<void>): void {
  let stack: FaultStack | undefined;
  beforeAll(async () => {
    stack = await FaultStack.start(opts);
    await started(stack);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  }, 30_000);
}

/** One `work` request with a 3 s timeout; true when it was served (answered with `params[0]` first). */
export async function served(client: OsrfClient, service: string, params: JsonValue[]): Promise<boolean> {
  try {
    const v = (await client.request(service, "work", params, { timeout: 3 }).first()) as JsonValue[];
    return v[0] === params[0];
  } catch {
    return false;
  }
}
