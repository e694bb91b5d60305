import { Client } from "../src/client/client.ts";
import { readCoreConfig } from "../src/config/core.ts";
import { connectBus } from "../src/connect/bus.ts";
import { makeResource } from "../src/protocol/ids.ts";
import { quietLogger } from "./quiet-logger.ts";

/**
 * A plain OpenSRF client (srfsh-like resource) logged in with the `/config/opensrf` account
 * of an opensrf_core.xml, on the bus its `<bus>` names, owning its connection.
 */
export async function connectTestClient(
  coreFile: string,
  opts: { timeout?: number; reconnect?: boolean } = {},
): Promise<Client> {
  const logger = quietLogger();
  const conn = await connectBus(readCoreConfig(coreFile).opensrf, {
    resource: makeResource("", "test"),
    logger,
    reconnect: opts.reconnect ?? false,
  });
  return new Client({ transport: conn, routerName: "router", logger, timeout: opts.timeout ?? 20, ownTransport: true });
}
