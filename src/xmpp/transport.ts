/**
 * The XMPP-named interface the listener, drone and router still send and receive through;
 * XmppConnection implements it, MemoryTransport (src/testing) stands in for it in tests. New
 * code takes the bus-neutral `BusConnection` (src/bus/types.ts) instead.
 */
import type { ProbeAnswer } from "./probe.ts";
import type { OutgoingStanza, Stanza } from "./types.ts";

/**
 * What every role needs from an XMPP connection: send OpenSRF stanzas, receive them.
 * `XmppConnection` (connection.ts) implements it over @xmpp/client.
 */
export interface Transport {
  /** Our full JID, e.g. `opensrf@localhost/_host_1700000000.123_42`. */
  readonly jid: string;
  /** Domain part of our JID. */
  readonly domain: string;
  /**
   * Send one stanza (`from` defaults to our JID). Throws `StanzaTooLargeError` when the
   * encoded stanza exceeds the configured limit; never throws for a closed socket
   * (the stanza is queued until reconnect, or dropped with an error log after close).
   */
  send(stanza: OutgoingStanza): void;
  /** Register the handler for incoming OpenSRF messages (bounces included, with `error`). */
  onStanza(handler: (stanza: Stanza) => void): void;
  /** Called after each successful (re)connect; `reconnected` false the first time. */
  onOnline(handler: (reconnected: boolean) => void): void;
  /**
   * Called when an established stream is lost (before any reconnect): stanzas written just
   * before may never have been delivered, and replies on the way to us are gone.
   */
  onOffline?(handler: () => void): void;
  /**
   * Sends the registration probe (probe.ts) to `to` about `service` and resolves with what came
   * back within `timeoutMs`. Optional: a transport without it is never probed.
   */
  probe?(to: string, service: string, timeoutMs: number): Promise<ProbeAnswer>;
  /** Answers registration probes sent to us (routers): `isNode(from, service)` is the answer. */
  answerProbes?(isNode: (from: string, service: string) => boolean): void;
  /** Close the stream cleanly. */
  close(): Promise<void>;
}
