/**
 * A connection wrapper that shows every message sent and received in its wire form
 * (`request --raw`): XML stanzas on XMPP, JSON list elements on Redis.
 */
import type { BusConnection } from "./types.ts";

/** Direction of a tapped message. */
export type TapDirection = "send" | "recv";

/**
 * Wrap a connection so every message sent and received is shown to `observe`, as the bus's
 * {@link BusConnection.wireText} spells it (a bounce is followed by its condition in an XML comment).
 */
export function tapBus(inner: BusConnection, observe: (dir: TapDirection, text: string) => void): BusConnection {
  const tapped: BusConnection = {
    kind: inner.kind,
    addresses: inner.addresses,
    get address() {
      return inner.address;
    },
    get domain() {
      return inner.domain;
    },
    send(m) {
      observe("send", inner.wireText(m));
      inner.send(m);
    },
    onMessage(handler) {
      inner.onMessage((m) => {
        // The XML comment form is what `request --raw` has always printed for XMPP bounces.
        const bounce = m.error
          ? ` <!-- error: ${m.error.condition}${m.error.text ? ` (${m.error.text})` : ""} -->`
          : "";
        observe("recv", inner.wireText(m) + bounce);
        handler(m);
      });
    },
    onOnline: (h) => inner.onOnline(h),
    onOffline: (h) => inner.onOffline?.(h),
    wireText: (m) => inner.wireText(m),
    close: () => inner.close(),
  };
  if (inner.flush) tapped.flush = () => inner.flush?.();
  return tapped;
}
