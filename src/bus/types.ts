/**
 * The bus-neutral transport interface: what every role (client, listener, drone, router) needs
 * from a message bus, whichever carries it — XMPP (OpenSRF 3.x, `src/xmpp/`) or Redis lists
 * (OpenSRF's main branch, `src/redis/`). docs/redis-bus.md explains how each maps onto it.
 */

/** Which bus a connection speaks. */
export type BusKind = "xmpp" | "redis";

/** Why a message came back undelivered (XMPP bounces; Redis has none). */
export interface BusError {
  /** XMPP `<error type>`: cancel, wait, modify, auth. */
  type: string;
  /** Defined condition, e.g. `service-unavailable`. */
  condition: string;
  /** Human text, if any. */
  text?: string;
}

/**
 * One OpenSRF transport message: the XMPP `<message>` stanza with its `<opensrf>` attributes,
 * or one JSON object of a Redis list. Missing fields are empty strings.
 */
export interface BusMessage {
  /** Recipient address. */
  to: string;
  /** Sender address: where a reply goes. */
  from: string;
  /** The conversation (session) id. */
  thread: string;
  /**
   * The osrfMessage JSON array, as text. Redis carries it as a real JSON array and the
   * connection converts; registrations carry the string `"[]"` there.
   */
  body: string;
  /** XMPP router attribute: the original sender of a forwarded message (Redis: never set). */
  routerFrom: string;
  routerTo: string;
  /** Service of a `register`/`unregister` command. */
  routerClass: string;
  /** `register`, `unregister`, or empty. */
  routerCommand: string;
  /** Log transaction id (`osrf_xid`). */
  xid: string;
  /** Set for bounces. */
  error?: BusError;
  /**
   * The service whose queue this message was taken from ({@link BusConnection.serveQueue}):
   * on Redis a request reaches the listener there, pushed by a router, with the caller's
   * address as `from`. Unset for what reaches our own address (and always on XMPP, where
   * the router forwards to the listener's own JID).
   */
  fromQueue?: string;
  /**
   * XMPP, on a connection with lazy bodies (the listener's): the body as it was on the wire,
   * still XML-escaped, so it can be handed on without decoding; `body` decodes it when read.
   */
  xmlBody?: string;
}

/**
 * What one registration probe found (XMPP, src/xmpp/probe.ts): a listener asks a router's
 * class JID whether the router still holds its registration.
 */
export type ProbeAnswer =
  /** The router answered: we are one of its nodes of the class. */
  | { kind: "registered" }
  /** The router answered: we are not (it restarted, or dropped us). */
  | { kind: "not-registered" }
  /** An error came back, from the server (no session at that JID) or from an entity that does not know the probe. */
  | { kind: "unavailable"; condition: string }
  /** Nothing within the timeout (a router that ignores iq stanzas, like the C one), or we are offline. */
  | { kind: "no-answer" };

/** A message to send: router fields and xid default to empty, `from` to our own address. */
export type OutgoingBusMessage = Partial<BusMessage> & Pick<BusMessage, "to">;

/**
 * How a bus spells the well-known addresses. Pure: the same answers on every connection of
 * that bus, so code that only builds addresses can take this instead of a connection.
 */
export interface BusAddresses {
  /**
   * Where registrations go: XMPP `router@private.localhost`, Redis
   * `opensrf:router:router:private.localhost`.
   */
  router(routerName: string, domain: string): string;
  /**
   * Where a client sends the first message of a request for `service`: XMPP
   * `router@domain/opensrf.math`; Redis `opensrf:service:_:_:opensrf.math`, which the
   * connection delivers to its own domain's router queue (as C and Perl do).
   */
  service(routerName: string, domain: string, service: string): string;
  /**
   * Where a listener sends `register`/`unregister`: XMPP `router@domain/router` (the
   * router's own resource, as C's listener addresses it: the bare JID could reach one of
   * its class connections), Redis the router's queue, as {@link router}.
   */
  routerCommands(routerName: string, domain: string): string;
  /**
   * The domain part of an address of this bus (trusted-domain checks): XMPP `a@d/r` → `d`,
   * Redis `opensrf:client:user:d:…` → `d`; "" when it has none.
   */
  domainOf(address: string): string;
}

/**
 * One process's connection to the bus: its own address, sending to any address, receiving
 * what is sent to it. `XmppConnection` and `RedisConnection` implement it.
 *
 * Contract shared by both:
 * - `send()` never blocks and never throws for a lost connection: the message is queued and
 *   written once online again (after `close()` it is dropped with an error log). It throws
 *   a `TransportError` subclass for a message it refuses (too large, no such domain).
 * - `onOffline` fires when an established connection is lost, before reconnecting: what was
 *   on its way to or from us may be gone, so callers waiting for replies should be told.
 *   `onOnline(true)` follows once reconnected with the same address.
 * - Handlers never throw into the connection: a failing handler is logged.
 */
export interface BusConnection {
  readonly kind: BusKind;
  /** Our own address, e.g. `opensrf@localhost/_host_1700000000.123_42` or `opensrf:client:opensrf:localhost:host:42:1f2e3d4c`. */
  readonly address: string;
  /** Our (primary) domain: the XMPP domain, or the Redis host name of `<domain>`. */
  readonly domain: string;
  /** This bus's well-known addresses. */
  readonly addresses: BusAddresses;
  /** Send one message (`from` defaults to {@link address}). */
  send(message: OutgoingBusMessage): void;
  /** The handler for every message that reaches us (one handler; a later call replaces it). */
  onMessage(handler: (message: BusMessage) => void): void;
  /** Called after each successful (re)connect; `reconnected` is false the first time. */
  onOnline(handler: (reconnected: boolean) => void): void;
  /** Called when an established connection is lost (see the contract above). */
  onOffline?(handler: () => void): void;
  /**
   * Listener only: also receive the requests the router queues for `service`. On Redis this
   * pops `opensrf:service:<username>:<domain>:<service>`, which only the listener may read;
   * on XMPP nothing changes, the router forwards them to our own address once registered.
   * They reach the same {@link onMessage} handler.
   */
  serveQueue?(service: string): void;
  /**
   * Stop taking requests of {@link serveQueue}; resolves once a pop in progress has ended and
   * whatever it took has been handed to the handler (so a graceful stop loses nothing).
   * `untilEmptyMs`: first keep taking them until a pop finds the queue empty (what the
   * routers forwarded just before they read our unregister), for at most that long.
   */
  stopServing?(service: string, opts?: { untilEmptyMs?: number }): Promise<void>;
  /**
   * XMPP only: sends the registration probe (src/xmpp/probe.ts) to `to` about `service` and
   * resolves with what came back within `timeoutMs`. A connection without it is never probed
   * (Redis: a router's queue does not vanish with the router).
   */
  probe?(to: string, service: string, timeoutMs: number): Promise<ProbeAnswer>;
  /** XMPP only: answers registration probes sent to us (routers): `isNode(from, service)` is the answer. */
  answerProbes?(isNode: (from: string, service: string) => boolean): void;
  /** Hand everything sent so far to the socket now (a drone does before saying it is idle). */
  flush?(): void;
  /** The exact wire form of a message as this bus would send it (for `request --raw` and logs). */
  wireText(message: OutgoingBusMessage): string;
  /** Close cleanly (Redis: deletes our own inbox, as C and Perl do). */
  close(): Promise<void>;
}
