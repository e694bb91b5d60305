/**
 * Opens the bus connection the configuration chose — XMPP or Redis — so commands and roles
 * need not know which. The one place that imports both transports, each only when chosen:
 * a process on XMPP never loads the Redis client (nor node:crypto with it), one on Redis never
 * loads @xmpp/client. Measured in a compiled binary: loading both costs a drone ~1.5 MB of
 * memory and several ms of CPU more than loading its own (BENCHMARKS.md).
 */
import type { BusConnection, OutgoingBusMessage } from "../bus/types.ts";
import type { ClientConfig } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import { redisConnectionOptions } from "../redis/from-config.ts";
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
    const { RedisConnection } = await import("../redis/connection.ts");
    return RedisConnection.connect({ ...redisConnectionOptions(cfg, opts.logger), reconnect });
  }
  const { XmppConnection } = await import("../xmpp/connection.ts");
  return XmppConnection.connect({
    ...clientConnectionOptions(cfg, opts.resource, opts.logger),
    reconnect,
    ...(opts.lazyBodies ? { lazyBodies: true } : {}),
  });
}

/**
 * How the bus of `cfg.bus` writes a message from `from`: the text its connection's `send`
 * and `wireText` make, without a connection (a drone warms its reply path before logging in).
 */
export async function wireEncoder(cfg: ClientConfig): Promise<(message: OutgoingBusMessage, from: string) => string> {
  if (cfg.bus === "redis") return (await import("../redis/envelope.ts")).encodeEnvelope;
  const { encodeOutgoing } = await import("../xmpp/stanza.ts");
  return encodeOutgoing;
}
