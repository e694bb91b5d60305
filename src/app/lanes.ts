/**
 * One queue per key (thread): work for a key runs after the previous work for that key has
 * settled, work for different keys runs concurrently. A stateful session's requests are
 * therefore served in order, one at a time, as a C drone serves them.
 */
export class Lanes {
  private readonly tails = new Map<string, Promise<void>>();

  /**
   * Runs `work` after every earlier `run` of the same key; resolves with its result. A key
   * with nothing queued (every stateless request: a new thread each) starts at once, with
   * no promise hop before it — what a drone does for most requests, before its JIT is warm.
   */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key);
    const result = prev === undefined ? start(work) : prev.then(work);
    // Settled either way: the next run of the key waits for this one; idle keys are
    // forgotten so stateless threads do not pile up.
    const settled = (): void => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
    const tail: Promise<void> = result.then(settled, settled);
    this.tails.set(key, tail);
    return result;
  }

  /** Number of keys with work queued or running. */
  get busy(): number {
    return this.tails.size;
  }

  /** Resolves when all work queued so far has settled. */
  async drained(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}

/** `work()`, a synchronous throw turned into a rejection (as `then` would have done). */
function start<T>(work: () => Promise<T>): Promise<T> {
  try {
    return work();
  } catch (e) {
    return Promise.reject(e);
  }
}
