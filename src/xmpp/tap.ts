/**
 * A transport wrapper that shows every stanza sent and received as XML (`request --raw`).
 */
import { completeStanza, encodeStanza } from "./stanza.ts";
import type { Transport } from "./transport.ts";

/** Direction of a tapped stanza. */
export type TapDirection = "send" | "recv";

/**
 * Wrap a transport so every stanza sent and received is shown to `observe`
 * (`request --raw`, debugging). The stanza is reported as XML.
 */
export function tapTransport(inner: Transport, observe: (dir: TapDirection, xml: string) => void): Transport {
  return {
    get jid() {
      return inner.jid;
    },
    get domain() {
      return inner.domain;
    },
    send(s) {
      observe("send", encodeStanza(completeStanza(s, inner.jid)));
      inner.send(s);
    },
    onStanza(handler) {
      inner.onStanza((s) => {
        observe(
          "recv",
          encodeStanza(s) +
            (s.error ? ` <!-- error: ${s.error.condition}${s.error.text ? ` (${s.error.text})` : ""} -->` : ""),
        );
        handler(s);
      });
    },
    onOnline: (h) => inner.onOnline(h),
    onOffline: (h) => inner.onOffline?.(h),
    close: () => inner.close(),
  };
}
