/**
 * The empty {@link BusMessage} both buses and the in-memory doubles start from: a field a
 * peer left out reads as "" on every bus, so that rule lives here once.
 */
import type { BusMessage, OutgoingBusMessage } from "./types.ts";

/** The string fields of a {@link BusMessage}, in the order C writes them (`error` and `fromQueue` are optional extras). */
export const BUS_MESSAGE_FIELDS = [
  "to",
  "from",
  "thread",
  "body",
  "routerFrom",
  "routerTo",
  "routerClass",
  "routerCommand",
  "xid",
] as const satisfies ReadonlyArray<keyof BusMessage>;

/** A {@link BusMessage} with every field but the addresses empty. */
export const EMPTY_MESSAGE_FIELDS: Readonly<Omit<BusMessage, "to" | "from">> = Object.freeze({
  thread: "",
  body: "",
  routerFrom: "",
  routerTo: "",
  routerClass: "",
  routerCommand: "",
  xid: "",
});

/** A fresh {@link BusMessage} with every field "" (to be filled in by a decoder). */
export function emptyBusMessage(): BusMessage {
  return { to: "", from: "", ...EMPTY_MESSAGE_FIELDS };
}

/** An outgoing message with its defaults filled in: the fields it leaves out empty, `from` as given unless it sets one. */
export function completeBusMessage(out: OutgoingBusMessage, from: string): BusMessage {
  return { from, ...EMPTY_MESSAGE_FIELDS, ...out };
}
