/**
 * OpenSRF's Redis bus addresses (list keys), as C's parse_bus_address reads them:
 * `opensrf:<purpose>:<username>:<domain>[:<remainder>]`.
 * - `opensrf:router:<router_name>:<domain>`: a router's queue (registrations, first messages).
 * - `opensrf:service:<username>:<domain>:<service>`: a listener's queue; `_:_` in a client's
 *   `to` means any instance, and such a message is pushed to the router queue instead.
 * - `opensrf:client:<username>:<domain>:<hostname>:<pid>:<random>`: every connection's inbox.
 */
import type { BusAddresses } from "../bus/types.ts";

/** The parts of a bus address. */
export interface BusAddress {
  purpose: string;
  username: string;
  domain: string;
  /** Everything after the domain (service name, or hostname:pid:random), "" if none. */
  remainder: string;
}

/** The {@link BusAddresses} of the Redis bus. */
export const redisAddresses: BusAddresses = {
  router: (routerName, domain) => `opensrf:router:${routerName}:${domain}`,
  // The router of our own domain picks the instance (C and Perl send `_:_`).
  service: (_routerName, _domain, service) => `opensrf:service:_:_:${service}`,
  routerCommands: (routerName, domain) => `opensrf:router:${routerName}:${domain}`,
  domainOf: (address) => parseBusAddress(address)?.domain ?? "",
};

/** A connection's inbox: `opensrf:client:<username>:<domain>:<hostname>:<pid>:<random>`. */
export function clientAddress(username: string, domain: string, hostname: string, pid: number, random: string): string {
  return `opensrf:client:${username}:${domain}:${hostname}:${pid}:${random}`;
}

/** The queue only the listener of `service` reads: `opensrf:service:<username>:<domain>:<service>`. */
export function serviceQueue(username: string, domain: string, service: string): string {
  return `opensrf:service:${username}:${domain}:${service}`;
}

/** The parts of `address`, or undefined when it is not an `opensrf:` address with purpose, username and domain. */
export function parseBusAddress(address: string): BusAddress | undefined {
  const parts = address.split(":");
  if (parts[0] !== "opensrf" || parts.length < 4) return undefined;
  const [, purpose, username, domain] = parts as [string, string, string, string];
  if (!purpose || !username || !domain) return undefined;
  return { purpose, username, domain, remainder: parts.slice(4).join(":") };
}

/** Where a message to `to` is pushed, and on which domain's Redis. */
export interface DeliveryTarget {
  /** The list key to RPUSH to. */
  queue: string;
  /** The domain (= Redis host) that holds it. */
  domain: string;
}

/**
 * Where a message addressed to `to` goes: client and router addresses are pushed to
 * themselves on their own domain's Redis; `opensrf:service:_:_:S` goes to our router's queue
 * (the message keeps its `to`), as C's osrfSendTransportPayload and Perl's AppSession do; a
 * service queue with a real username and domain (what a router forwards to) to itself.
 * Undefined for anything else.
 */
export function deliveryTarget(to: string, routerName: string, primaryDomain: string): DeliveryTarget | undefined {
  const a = parseBusAddress(to);
  if (!a) return undefined;
  switch (a.purpose) {
    case "client":
    case "router":
      return { queue: to, domain: a.domain };
    case "service":
      if (!a.remainder) return undefined;
      if (a.username === "_" || a.domain === "_") {
        return { queue: redisAddresses.router(routerName, primaryDomain), domain: primaryDomain };
      }
      return { queue: to, domain: a.domain };
    default:
      return undefined;
  }
}
