/**
 * OpenSRF's XMPP addresses: routers are `router@domain`, a service is reached through its
 * router's resource, `router@domain/<service>`.
 */
import type { BusAddresses } from "../bus/types.ts";

/** The {@link BusAddresses} of XMPP. */
export const xmppAddresses: BusAddresses = {
  router: (routerName, domain) => `${routerName}@${domain}`,
  service: (routerName, domain, service) => `${routerName}@${domain}/${service}`,
};
