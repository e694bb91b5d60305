/**
 * Counts the work string primitives do while a function runs, so a test can tell linear
 * from quadratic code by a number that no machine load changes.
 *
 * The primitives a scanner or tokenizer is built from are wrapped for the duration of one
 * synchronous call: `indexOf`, `includes`, `startsWith`, `endsWith`, `slice`, `substring`,
 * `replaceAll`, `Array.prototype.join` and `RegExp.prototype.exec`. Each adds the characters
 * it scans or copies: a search from its start position to the end of the match (or of the
 * string, when it fails), a slice or join its result, `replaceAll` its input and result.
 * String `+` is not counted (the engine builds ropes). Work done through other primitives
 * goes unseen, so a bound on the count can miss a regression but never invents one.
 */

/** What {@link countStringWork} measured. */
export interface StringWork<T> {
  value: T;
  /** Characters scanned or copied by the wrapped primitives. */
  chars: number;
  /** Calls of the wrapped primitives. */
  calls: number;
}

type Method = (...args: unknown[]) => unknown;

/** Runs `fn` (synchronously) and counts the string work it does. */
export function countStringWork<T>(fn: () => T): StringWork<T> {
  let chars = 0;
  let calls = 0;
  const restore: Array<() => void> = [];
  /** Replaces `proto[name]` with a counting wrapper; `cost` sees `this`, the args, the result and `before`. */
  function wrap<S>(
    proto: object,
    name: string,
    cost: (self: S, args: unknown[], out: unknown, before: number) => number,
    before: (self: S) => number = () => 0,
  ): void {
    const target = proto as Record<string, Method>;
    const original = target[name]!;
    target[name] = function (this: S, ...args: unknown[]) {
      const b = before(this);
      const out = original.apply(this, args);
      calls++;
      chars += cost(this, args, out, b);
      return out;
    };
    restore.push(() => {
      target[name] = original;
    });
  }
  const indexOf = String.prototype.indexOf;
  const from = (self: string, args: unknown[]) => Math.max(0, Math.min(self.length, Number(args[1] ?? 0) || 0));
  const searched = (self: string, args: unknown[], found: number) =>
    (found === -1 ? self.length : found + String(args[0]).length) - from(self, args);

  wrap(String.prototype, "indexOf", (self: string, args, out) => searched(self, args, out as number));
  wrap(String.prototype, "includes", (self: string, args) =>
    searched(self, args, indexOf.call(self, String(args[0]), from(self, args))),
  );
  wrap(String.prototype, "startsWith", (_self: string, args) => String(args[0]).length);
  wrap(String.prototype, "endsWith", (_self: string, args) => String(args[0]).length);
  wrap(String.prototype, "slice", (_self: string, _args, out) => (out as string).length);
  wrap(String.prototype, "substring", (_self: string, _args, out) => (out as string).length);
  wrap(String.prototype, "replaceAll", (self: string, _args, out) => self.length + (out as string).length);
  wrap(Array.prototype, "join", (_self: unknown[], _args, out) => (out as string).length);
  // A global or sticky regex resumes at lastIndex; any other starts at 0.
  wrap(
    RegExp.prototype,
    "exec",
    (_self: RegExp, args, out, start) => {
      const m = out as RegExpExecArray | null;
      return (m === null ? String(args[0]).length : m.index + m[0].length) - start;
    },
    (self) => (self.global || self.sticky ? self.lastIndex : 0),
  );
  try {
    return { value: fn(), chars, calls };
  } finally {
    for (const r of restore.reverse()) r();
  }
}
