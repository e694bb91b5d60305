/**
 * Run-time check that a handler's result can travel as JSON without silent loss.
 *
 * JSON.stringify quietly turns functions and non-finite numbers into null or drops them,
 * and throws a bare TypeError for BigInts and cycles; a service author deserves to hear
 * which value of which method was wrong instead.
 */

type Step = { parent: Step | null; key: string | number };

interface Frame {
  value: unknown;
  step: Step | null;
  /** Set when leaving an object: removes it from the current path. */
  leave?: object;
}

function pathOf(step: Step | null): string {
  const keys: (string | number)[] = [];
  for (let s = step; s !== null; s = s.parent) keys.push(s.key);
  if (keys.length === 0) return "the top level";
  let out = "";
  for (let i = keys.length - 1; i >= 0; i--) {
    const k = keys[i] as string | number;
    out += typeof k === "number" ? `[${k}]` : /^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`;
  }
  return out.startsWith(".") ? out.slice(1) : out;
}

function kindProblem(v: unknown): string | null {
  switch (typeof v) {
    case "bigint":
      return "a BigInt";
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
    case "number":
      return Number.isFinite(v) ? null : `the number ${String(v)}`;
    default:
      if (v instanceof Map) return "a Map (convert it to an object or array)";
      if (v instanceof Set) return "a Set (convert it to an array)";
      return null;
  }
}

/**
 * Describes why `value` cannot be sent as JSON, or returns null when it can.
 *
 * Follows JSON.stringify's rules for what is legal (`toJSON` is applied, `undefined`
 * object members are skipped and `undefined` array items become null) but refuses what it
 * would lose or choke on: BigInts, functions, symbols, Maps, Sets, non-finite numbers and
 * cycles. Walks iteratively, so any nesting depth is fine.
 *
 * @returns e.g. `a BigInt at items[2].price`, or null.
 */
export function findJsonProblem(value: unknown): string | null {
  if (isPlainJson(value, 0)) return null;
  const onPath = new Set<object>();
  const stack: Frame[] = [{ value, step: null }];
  while (stack.length > 0) {
    const frame = stack.pop() as Frame;
    if (frame.leave !== undefined) {
      onPath.delete(frame.leave);
      continue;
    }
    let v = frame.value;
    if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
      try {
        v = (v as { toJSON: (key: string) => unknown }).toJSON(String(frame.step?.key ?? ""));
      } catch (e) {
        return `toJSON() threw at ${pathOf(frame.step)}: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    const problem = kindProblem(v);
    if (problem !== null) return `${problem} at ${pathOf(frame.step)}`;
    if (v === null || typeof v !== "object") continue;

    if (onPath.has(v)) return `a cycle at ${pathOf(frame.step)}`;
    onPath.add(v);
    stack.push({ value: undefined, step: null, leave: v });
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ value: v[i], step: { parent: frame.step, key: i } });
      }
    } else {
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i] as string;
        const item = (v as Record<string, unknown>)[key];
        // JSON.stringify skips undefined members; that is fine (optional fields).
        if (item === undefined) continue;
        stack.push({ value: item, step: { parent: frame.step, key } });
      }
    }
  }
  return null;
}

/** Deeper than this, {@link isPlainJson} leaves the value to the full walk (cycles end there). */
const QUICK_DEPTH = 32;

/**
 * The common case, without the walk's bookkeeping: strings, booleans, null, finite numbers,
 * arrays and plain objects (no `toJSON`) within {@link QUICK_DEPTH} levels. False does not mean
 * a problem, only that the full walk must decide. A handler's result passes through here before
 * every reply, mostly in drones whose JIT is not warm yet.
 */
function isPlainJson(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(v);
    case "object": {
      if (v === null) return true;
      if (depth >= QUICK_DEPTH || typeof (v as { toJSON?: unknown }).toJSON === "function") return false;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!isPlainJson(v[i], depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in v) {
        const item = (v as Record<string, unknown>)[key];
        if (item !== undefined && !isPlainJson(item, depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}
