/**
 * opensrf.math — the classic OpenSRF example service (C: src/c-apps/osrf_math.c), with the
 * same method names, argc and notes, so `srfsh` sessions written for the C service work
 * unchanged: `request opensrf.math add 2, 2` → 4.
 *
 * Arithmetic follows the C service (its dbmath backend): each param is read as text
 * (numbers or numeric strings), converted with strtod semantics (leading number, else 0),
 * and the result is a JSON number. Unlike C, this one computes locally instead of
 * forwarding to opensrf.dbmath.
 *
 * Division by zero: C computes the IEEE result and writes it as the bare token `inf` (or
 * `nan`), which is not JSON — clients fail to parse that reply. Here it is refused with a
 * clear exception instead.
 */
import { defineMethod, defineService, type JsonValue, MethodException, StatusCode } from "osrf-prefork";

// C: jsonObjectToSimpleString then strtod — a leading decimal number is used, else 0.
const LEADING_NUMBER = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/;

function toDouble(v: JsonValue): number {
  if (typeof v === "number") return v;
  if (typeof v === "string") {
    const m = LEADING_NUMBER.exec(v);
    return m ? Number(m[0]) : 0;
  }
  // C gets no text out of null, booleans, arrays or objects; its method then fails with
  // the generic exception, which is kept here so callers see what C callers see.
  throw new MethodException(StatusCode.NOTFOUND, "An unknown server error occurred");
}

function arithmetic(name: string, notes: string, op: (a: number, b: number) => number) {
  return defineMethod<[JsonValue, JsonValue]>({
    name,
    argc: 2,
    notes,
    symbol: "osrfMathRun",
    signature: {
      desc: notes,
      params: [
        { name: "x", desc: "first operand", type: "number" },
        { name: "y", desc: "second operand", type: "number" },
      ],
      return: { desc: "the result", type: "number" },
    },
    handler: (_ctx, x, y) => op(toDouble(x), toDouble(y)),
  });
}

export default defineService({
  name: "opensrf.math",
  methods: [
    arithmetic("add", "Adds two numbers", (a, b) => a + b),
    arithmetic("sub", "Subtracts two numbers", (a, b) => a - b),
    arithmetic("mult", "Multiplies two numbers", (a, b) => a * b),
    arithmetic("div", "Divides two numbers", (a, b) => {
      if (b === 0) throw new MethodException(StatusCode.BADREQUEST, "opensrf.math div: division by zero");
      return a / b;
    }),
  ],
});
