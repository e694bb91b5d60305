/**
 * Errors of the XMPP layer: connect failures, bounces, oversized and malformed stanzas. The
 * bases are the bus-neutral ones of src/bus/errors.ts, re-exported for existing importers.
 */
import { ConnectError, MessageTooLargeError, TransportError } from "../bus/errors.ts";
import type { StanzaError } from "./types.ts";

export { ConnectError, TransportError };

/** A stanza could not be parsed as an OpenSRF message. */
export class StanzaDecodeError extends TransportError {
  constructor(
    readonly reason: string,
    readonly raw: string,
  ) {
    super(`malformed OpenSRF stanza: ${reason}`);
    this.name = "StanzaDecodeError";
  }
}

/** Outgoing stanza exceeds `max_stanza_size`; raise the limit in the XMPP server and config, or return less data. */
export class StanzaTooLargeError extends MessageTooLargeError {
  constructor(size: number, limit: number, to: string) {
    super(
      size,
      limit,
      to,
      `stanza to ${to} is ${size} bytes, over the ${limit}-byte limit ` +
        `(raise <max_stanza_size> in opensrf_core.xml and the XMPP server's stanza limit)`,
    );
    this.name = "StanzaTooLargeError";
  }
}

/** The XMPP server bounced a message (`type="error"`), e.g. service not registered. */
export class BounceError extends TransportError {
  constructor(
    readonly to: string,
    readonly thread: string,
    readonly error: StanzaError,
  ) {
    super(`message to ${to} bounced: ${error.condition}${error.text ? ` (${error.text})` : ""}`);
    this.name = "BounceError";
  }
}
