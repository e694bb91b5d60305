/**
 * Opens the bus connection the configuration chose — XMPP or Redis — so commands and roles
 * need not know which. The one place that imports both transports.
 */
import type { BusConnection } from "../bus/types.ts";
import type { ClientConfig } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import { RedisConnection } from "../redis/connection.ts";
import { redisConnectionOptions } from "../redis/from-config.ts";
import { XmppConnection } from "../xmpp/connection.ts";
import { clientConnectionOptions } from "../xmpp/from-config.ts";

/** How to open a client-side connection (client, listener or drone). */
export interface ConnectBusOptions {
  /**
   * XMPP resource (e.g. `_host_1700000000.123_42`, from makeResource). Redis addresses are
   * made by the connection (`opensrf:client:<user>:<domain>:<host>:<pid>:<random>`).
   */
  resource: string;
  logger: Logger;
  /** Keep reconnecting after the first connect (default true). */
  reconnect?: boolean;
  /** XMPP: message bodies decoded only when read (the listener's connection; see `XmppConnection`). */
  lazyBodies?: boolean;
}

/**
 * Connects to the bus of `cfg.bus` (see `withBus()` in src/config/bus.ts for how it is
 * chosen) with the client section's settings.
 * @throws ConnectError (a TransportError) with one line naming server and account.
 */
export async function connectBus(cfg: ClientConfig, opts: ConnectBusOptions): Promise<BusConnection> {
  const reconnect = opts.reconnect ?? true;
  if (cfg.bus === "redis") {
    return RedisConnection.connect({ ...redisConnectionOptions(cfg, opts.logger), reconnect });
  }
  return XmppConnection.connect({
    ...clientConnectionOptions(cfg, opts.resource, opts.logger),
    reconnect,
    ...(opts.lazyBodies ? { lazyBodies: true } : {}),
  });
}
