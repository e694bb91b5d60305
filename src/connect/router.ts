/**
 * Starts one router on the chosen bus: on XMPP an OsrfRouter (a connection per class), on
 * Redis a QueueRouter popping its router queue. With connect/bus.ts the only place that
 * imports both transports.
 */
import type { BusKind } from "../bus/types.ts";
import type { CoreConfig, RouterConfig } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import { RedisConnection } from "../redis/connection.ts";
import { redisRouterConnectionOptions } from "../redis/from-config.ts";
import { QueueRouter } from "../router/queue-router.ts";
import { OsrfRouter } from "../router/router.ts";
import { XmppConnection } from "../xmpp/connection.ts";
import { routerConnectionOptions } from "../xmpp/from-config.ts";

/** A running router. */
export interface RunningRouter {
  stop(): Promise<void>;
}

/** Starts the router of `cfg` on `bus`. @throws ConnectError when it cannot log in. */
export async function startRouter(
  bus: BusKind,
  cfg: RouterConfig,
  core: CoreConfig,
  logger: Logger,
): Promise<RunningRouter> {
  if (bus === "redis") {
    const conn = await RedisConnection.connect(redisRouterConnectionOptions(cfg, logger, core.opensrf.maxStanzaSize));
    const router = new QueueRouter({ config: cfg, logger, bus: conn });
    router.start();
    return router;
  }
  const router = new OsrfRouter({
    config: cfg,
    logger,
    connect: (resource) =>
      XmppConnection.connect(routerConnectionOptions(cfg, resource, logger, core.opensrf.maxStanzaSize)),
  });
  await router.start();
  return router;
}
