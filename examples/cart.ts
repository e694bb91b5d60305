/**
 * opensrf.cart — a stateful service: one shopping cart per CONNECT session.
 *
 * A caller CONNECTs, adds items, asks for the list and the total, and DISCONNECTs; the cart
 * lives in `ctx.session.state` and disappears with the session (or after the keepalive
 * timeout). Called without CONNECT, every method refuses with a clear exception, since a
 * cart that vanishes after each request would silently lose the caller's items.
 *
 * srfsh:
 *   open opensrf.cart
 *   request opensrf.cart add_item "apple", 0.5, 3
 *   request opensrf.cart total
 *   close opensrf.cart
 */
import {
  defineMethod,
  defineService,
  type JsonValue,
  type MethodContext,
  MethodException,
  StatusCode,
} from "osrf-prefork";

/** One cart line. */
interface CartItem {
  name: string;
  price: number;
  quantity: number;
}

function cartOf(ctx: MethodContext<JsonValue[]>): CartItem[] {
  if (!ctx.session.stateful) {
    throw new MethodException(
      StatusCode.BADREQUEST,
      `${ctx.service} ${ctx.method} needs a stateful session: CONNECT first, then call it on the same thread`,
    );
  }
  const state = ctx.session.state as { cart?: CartItem[] };
  state.cart ??= [];
  return state.cart;
}

function cents(n: number): number {
  return Math.round(n * 100) / 100;
}

const addItem = defineMethod({
  name: "add_item",
  argc: 2,
  notes: "Adds an item to the session's cart and returns the number of lines. PARAMS(name, price, [quantity])",
  signature: {
    desc: "Adds an item to the session's cart",
    params: [
      { name: "name", desc: "item name", type: "string" },
      { name: "price", desc: "unit price", type: "number" },
      { name: "quantity", desc: "how many (default 1)", type: "number" },
    ],
    return: { desc: "number of lines in the cart", type: "number" },
  },
  handler(ctx, name, price, quantity = 1) {
    const cart = cartOf(ctx);
    const bad = (why: string) => new MethodException(StatusCode.BADREQUEST, `add_item: ${why}`);
    if (typeof name !== "string" || name === "") throw bad("name must be a non-empty string");
    if (typeof price !== "number" || !(price >= 0)) throw bad("price must be a number >= 0");
    if (typeof quantity !== "number" || !Number.isInteger(quantity) || quantity < 1) {
      throw bad("quantity must be a positive integer");
    }
    const line = cart.find((i) => i.name === name && i.price === price);
    if (line) line.quantity += quantity;
    else cart.push({ name, price, quantity });
    return cart.length;
  },
});

const list = defineMethod({
  name: "list",
  notes: "Returns the session's cart as one array of {name, price, quantity}.",
  handler: (ctx) => cartOf(ctx),
});

const total = defineMethod({
  name: "total",
  notes: "Returns the total price of the session's cart, rounded to cents.",
  handler: (ctx) => cents(cartOf(ctx).reduce((sum, i) => sum + i.price * i.quantity, 0)),
});

export default defineService({
  name: "opensrf.cart",
  methods: [addItem, list, total],
});
