/**
 * The OpenSRF stanza: an XMPP `<message>` with router data in an `<opensrf>` child. These are
 * the bus-neutral message types of src/bus under their XMPP names.
 */
import type { BusError, BusMessage, OutgoingBusMessage } from "../bus/types.ts";

/** XMPP error carried by a bounced (`type="error"`) message. */
export type StanzaError = BusError;

/** One OpenSRF `<message>` stanza, attributes and children flattened. */
export type Stanza = BusMessage;

/** A stanza to send: router fields and xid default to empty, `from` to our own JID. */
export type OutgoingStanza = OutgoingBusMessage;
