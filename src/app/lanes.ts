/**
 * One queue per key (thread): work for a key runs after the previous work for that key has
 * settled, work for different keys runs concurrently. A stateful session's requests are
 * therefore served in order, one at a time, as a C drone serves them.
 */
export class Lanes {
  private readonly tails = new Map<string, Promise<void>>();

  /**
   * Runs `work` after every earlier `run` of the same key and returns its result. A key
   * with nothing queued (every stateless request: a new thread each) starts at once, and
   * work that finishes without waiting returns its value as it is, with no promise made:
   * nothing can have queued behind it, and a drone serves most requests that way, mostly
   * before its JIT is warm. A synchronous throw of such work is thrown to the caller.
   */
  run<T>(key: string, work: () => T | Promise<T>): T | Promise<T> {
    const prev = this.tails.get(key);
    if (prev === undefined) {
      const now = work();
      return now instanceof Promise ? this.track(key, now) : now;
    }
    return this.track(key, prev.then(work));
  }

  /** Number of keys with work queued or running. */
  get busy(): number {
    return this.tails.size;
  }

  /** Resolves when all work queued so far has settled. */
  async drained(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }

  /** Makes `result` the key's tail until it settles; idle keys are forgotten. */
  private track<T>(key: string, result: Promise<T>): Promise<T> {
    // Settled either way: the next run of the key waits for this one; forgetting idle keys
    // keeps stateless threads from piling up.
    const settled = (): void => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
    const tail: Promise<void> = result.then(settled, settled);
    this.tails.set(key, tail);
    return result;
  }
}
