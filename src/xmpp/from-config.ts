/**
 * Connection options from opensrf_core.xml: a client's (`/config/opensrf`) or a router's
 * (`/config/routers/router/transport`).
 */
import type { ClientConfig, RouterConfig } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import type { ConnectionOptions } from "./connection.ts";

/** Connection settings for a client, listener or drone from `/config/opensrf`. */
export function clientConnectionOptions(cfg: ClientConfig, resource: string, logger: Logger): ConnectionOptions {
  return {
    host: cfg.server,
    port: cfg.port,
    domain: cfg.domain,
    username: cfg.username,
    password: cfg.passwd,
    resource,
    maxStanzaSize: cfg.maxStanzaSize,
    msgSizeWarn: cfg.msgSizeWarn,
    logger,
  };
}

/** Connection settings for a router connection from `/config/routers/router/transport`. */
export function routerConnectionOptions(
  cfg: RouterConfig,
  resource: string,
  logger: Logger,
  maxStanzaSize: number,
): ConnectionOptions {
  const t = cfg.transport;
  return {
    host: cfg.host,
    port: t.port,
    domain: t.server,
    username: t.username,
    password: t.password,
    resource,
    maxStanzaSize,
    logger,
    connectTimeoutMs: t.connectTimeout * 1000,
  };
}
