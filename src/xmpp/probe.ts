/**
 * The registration probe: one `<iq type="get">` a listener sends to a router's class JID
 * (`router@<domain>/<service>`) to learn whether that router still holds its registration.
 *
 * A router holds the class JID's session exactly while it has a node of the class (both the
 * C router and ours log it in on the first registration and out with the last node), and a
 * restarted router starts without it. So:
 *
 * - the XMPP server answers with an error (`service-unavailable`, "User session not found"):
 *   nobody is logged in there — the router has no node of the class (it restarted, or is down);
 * - our router answers itself, saying whether the asking JID is one of its nodes of the class;
 * - the C router never answers an iq (libopensrf reads and drops it): no answer means it is
 *   online and has some node of the class, maybe not us.
 */
import type { ProbeAnswer } from "../bus/types.ts";

/** XML namespace of the probe's `<query>`: `<query xmlns=… class="opensrf.math"/>`, answered with `registered="true|false"`. */
export const REGISTRATION_PROBE_NS = "urn:osrf-prefork:registration";

/** What one probe found (the type lives with BusConnection, whose optional `probe` returns it). */
export type { ProbeAnswer };
