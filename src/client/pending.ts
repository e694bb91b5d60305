/**
 * A request's stream of results, iterable or collected as a whole.
 */
import type { JsonValue } from "../protocol/types.ts";
import type { PendingRequest } from "./types.ts";

/**
 * A request's result stream: results are pushed as they arrive, the request ends with
 * `finish()` or `fail()`. Consumers iterate it or `collect()` it; results that arrive
 * before anyone iterates are kept, so nothing is lost.
 */
export class ResultStream implements PendingRequest {
  private queue: JsonValue[] = [];
  private done = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  /** `onSettled` runs once, when the request completes or fails. */
  constructor(private readonly onSettled: () => void = () => {}) {}

  push(value: JsonValue): void {
    if (this.done) return;
    this.queue.push(value);
    this.notify();
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    this.notify();
    this.onSettled();
  }

  fail(error: Error): void {
    if (this.done) return;
    this.error = error;
    this.done = true;
    this.notify();
    this.onSettled();
  }

  get finished(): boolean {
    return this.done;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<JsonValue> {
    for (;;) {
      if (this.queue.length > 0) {
        yield this.queue.shift()!;
        continue;
      }
      if (this.done) {
        if (this.error) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  async collect(): Promise<JsonValue[]> {
    const all: JsonValue[] = [];
    for await (const v of this) all.push(v);
    return all;
  }

  async first(): Promise<JsonValue | undefined> {
    const all = await this.collect();
    return all[0];
  }
}
