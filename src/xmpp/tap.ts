/**
 * A transport wrapper that shows every stanza sent and received as XML (`request --raw`, the
 * devkit's wire taps): the bus-neutral tap of src/bus/tap.ts, keeping the XMPP-named members.
 */
import { type TapDirection, tapBus } from "../bus/tap.ts";
import type { BusConnection } from "../bus/types.ts";
import type { Transport } from "./transport.ts";

export type { TapDirection };

/**
 * Wrap a connection so every stanza sent and received is shown to `observe` as XML (bounces
 * followed by an `<!-- error: … -->` comment).
 */
export function tapTransport(
  inner: Transport & BusConnection,
  observe: (dir: TapDirection, xml: string) => void,
): Transport & BusConnection {
  const bus = tapBus(inner, observe);
  return {
    kind: bus.kind,
    addresses: bus.addresses,
    get jid() {
      return inner.jid;
    },
    get address() {
      return inner.address;
    },
    get domain() {
      return inner.domain;
    },
    send: (s) => bus.send(s),
    onMessage: (h) => bus.onMessage(h),
    onStanza: (h) => bus.onMessage(h),
    onOnline: (h) => bus.onOnline(h),
    onOffline: (h) => bus.onOffline?.(h),
    wireText: (s) => bus.wireText(s),
    close: () => bus.close(),
  };
}
