/**
 * Registering a listener with its routers (C `osrf_prefork_register_routers`), and telling
 * router traffic from anything else.
 */
import type { RouterTarget } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import type { Transport } from "../xmpp/transport.ts";

/**
 * The routers `service` registers with: every configured router whose `services` list
 * is absent or names the service (simple and complex configs alike).
 */
export function routersFor(service: string, routers: readonly RouterTarget[]): RouterTarget[] {
  return routers.filter((r) => !r.services || r.services.includes(service));
}

/** The JID registrations go to: `<router_name>@<domain>/router`. */
export function routerJid(r: RouterTarget): string {
  return `${r.name}@${r.domain}/router`;
}

/** `user@domain` of a JID, lower-cased (XMPP node and domain compare case-insensitively). */
export function bareJid(jid: string): string {
  const slash = jid.indexOf("/");
  return (slash >= 0 ? jid.slice(0, slash) : jid).toLowerCase();
}

/**
 * Sends register/unregister to the service's routers and remembers whether the service
 * should currently be registered (so a reconnect re-registers only when it should).
 */
export class Registration {
  private readonly targets: RouterTarget[];
  private readonly routerBareJids: Set<string>;
  private wanted = false;

  constructor(
    private readonly transport: Transport,
    private readonly service: string,
    routers: readonly RouterTarget[],
    private readonly logger: Logger,
  ) {
    this.targets = routersFor(service, routers);
    this.routerBareJids = new Set(this.targets.map((r) => `${r.name}@${r.domain}`.toLowerCase()));
  }

  /** Routers this service registers with. */
  get routers(): readonly RouterTarget[] {
    return this.targets;
  }

  /** True between {@link register} and {@link unregister}. */
  get registered(): boolean {
    return this.wanted;
  }

  /** Sends `register` to every router (a no-op for a router that already has us). */
  register(): void {
    this.wanted = true;
    this.send("register");
  }

  /** Sends `unregister` to every router: they stop forwarding requests to us. */
  unregister(): void {
    this.wanted = false;
    this.send("unregister");
  }

  /** True when a message comes from one of our routers (any resource, e.g. `router@d/<service>`). */
  isRouter(from: string): boolean {
    return this.routerBareJids.has(bareJid(from));
  }

  private send(command: "register" | "unregister"): void {
    if (this.targets.length === 0) {
      this.logger.warn(`${this.service}: no router in /config/opensrf/routers lists this service; not ${command}ing anywhere`);
      return;
    }
    for (const r of this.targets) {
      const to = routerJid(r);
      this.logger.info(`${this.service} ${command === "register" ? "registering" : "un-registering"} with router ${to}`);
      this.transport.send({
        to,
        body: command === "register" ? "registering" : "unregistering",
        routerClass: this.service,
        routerCommand: command,
      });
    }
  }
}
