/**
 * One queue per key (thread): work for a key runs after the previous work for that key has
 * settled, work for different keys runs concurrently. A stateful session's requests are
 * therefore served in order, one at a time, as a C drone serves them.
 */
export class Lanes {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `work` after every earlier `run` of the same key; resolves with its result. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(work);
    const tail = result.then(
      () => {},
      () => {},
    );
    this.tails.set(key, tail);
    // Forget idle keys so stateless threads (a new one per request) do not pile up.
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
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
