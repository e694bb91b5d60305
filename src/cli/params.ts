/**
 * Request params from the command line, in srfsh's comma-separated form or one JSON value per
 * argument (`request`).
 */
import type { JsonValue } from "../protocol/types.ts";

/**
 * Parse request params from the command line. Accepts srfsh's form (one string of
 * comma-separated JSON values: `2, 2`) and one JSON value per argument (`2 2`).
 * Throws an Error naming the bad argument.
 */
export function parseParams(args: readonly string[]): JsonValue[] {
  if (args.length === 0) return [];
  const joined = args.join(" ").trim();
  if (joined === "") return [];
  try {
    return JSON.parse(`[${joined}]`) as JsonValue[];
  } catch {
    // Not srfsh form: try one JSON value per argument.
  }
  return args.map((a, i) => {
    try {
      return JSON.parse(a) as JsonValue;
    } catch {
      throw new Error(
        `param ${i + 1} (${a.length > 40 ? `${a.slice(0, 40)}…` : a}) is not JSON; quote strings, e.g. '"hello"'`,
      );
    }
  });
}
