/**
 * Redis connection options from opensrf_core.xml's client section: the same keys as XMPP, read
 * as OpenSRF main reads them (`domain` = Redis host, `username`/`passwd` = ACL account).
 */
import { DEFAULT_REDIS_PORT } from "../config/core.ts";
import type { ClientConfig, RouterConfig } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import type { RedisConnectionOptions } from "./connection.ts";

/** Connection settings for a client, listener or drone from `/config/opensrf`. */
export function redisConnectionOptions(cfg: ClientConfig, logger: Logger): RedisConnectionOptions {
  return {
    // <server> (our addition) overrides the host; OpenSRF connects to <domain> itself.
    host: cfg.server,
    port: cfg.port,
    domain: cfg.domain,
    username: cfg.username,
    password: cfg.passwd,
    routerName: cfg.routerName,
    maxMessageSize: cfg.maxStanzaSize,
    msgSizeWarn: cfg.msgSizeWarn,
    logger,
  };
}

/**
 * Connection settings of a router from `/config/routers/router`: `transport/server` is its
 * domain (and Redis host, unless our `<host>` says otherwise), `transport/username` its ACL
 * account and the name in its queue `opensrf:router:<username>:<server>`, as C reads them.
 */
export function redisRouterConnectionOptions(
  cfg: RouterConfig,
  logger: Logger,
  maxMessageSize: number,
): RedisConnectionOptions {
  const t = cfg.transport;
  return {
    host: cfg.host,
    port: t.portFromFile ? t.port : DEFAULT_REDIS_PORT,
    domain: t.server,
    username: t.username,
    password: t.password,
    routerName: t.username,
    maxMessageSize,
    logger,
    connectTimeoutMs: t.connectTimeout * 1000,
  };
}
