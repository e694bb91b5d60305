/**
 * OpenSRF's XMPP addresses: routers are `router@domain`, a service is reached through its
 * router's resource, `router@domain/<service>`.
 */
import type { BusAddresses } from "../bus/types.ts";

/** The {@link BusAddresses} of XMPP. */
export const xmppAddresses: BusAddresses = {
  router: (routerName, domain) => `${routerName}@${domain}`,
  service: (routerName, domain, service) => `${routerName}@${domain}/${service}`,
  routerCommands: (routerName, domain) => `${routerName}@${domain}/router`,
  domainOf: jidDomain,
};

/** Domain part of a JID (`user@domain/resource`); the whole text when it has no `@`. */
export function jidDomain(jid: string): string {
  const at = jid.indexOf("@");
  const rest = at >= 0 ? jid.slice(at + 1) : jid;
  const slash = rest.indexOf("/");
  return slash >= 0 ? rest.slice(0, slash) : rest;
}
