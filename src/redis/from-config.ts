/**
 * Redis connection options from opensrf_core.xml's client section: the same keys as XMPP, read
 * as OpenSRF main reads them (`domain` = Redis host, `username`/`passwd` = ACL account).
 */
import type { ClientConfig } from "../config/types.ts";
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
