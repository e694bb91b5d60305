/**
 * The OpenSRF stanza: an XMPP `<message>` with router data in an `<opensrf>` child.
 */

/** XMPP error carried by a bounced (`type="error"`) message. */
export interface StanzaError {
  /** `type` attribute of `<error>`: cancel, wait, modify, auth. */
  type: string;
  /** Defined condition element name, e.g. `service-unavailable`. */
  condition: string;
  /** Human text from `<text>`, if any. */
  text?: string;
}

/** One OpenSRF `<message>` stanza, attributes and children flattened. */
export interface Stanza {
  to: string;
  from: string;
  /** `<thread>` text: the session id. */
  thread: string;
  /** `<body>` text: the osrfMessage JSON array (unescaped). */
  body: string;
  /** `<opensrf>` attributes; missing attributes are empty strings. */
  routerFrom: string;
  routerTo: string;
  routerClass: string;
  routerCommand: string;
  xid: string;
  /** Set for bounces. */
  error?: StanzaError;
}

/** A stanza to send: router fields and xid default to empty, `from` to our own JID. */
export type OutgoingStanza = Partial<Stanza> & Pick<Stanza, "to">;
