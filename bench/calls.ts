/**
 * The OpenSRF calls the benches time, as closures over one caller: the same params and the
 * same session shape everywhere, so the stanzas match the relay ceiling's (bench/relay.ts).
 */
import type { Client } from "../src/client/client.ts";
import {
  ADD_PARAMS,
  BIG_BYTES,
  BIG_ECHO_PARAMS,
  ECHO_PARAMS,
  MID_ECHO_BYTES,
  MID_ECHO_PARAMS,
  SESSION_REQUESTS,
} from "./relay.ts";

/** One call of each kind to `service`. */
export interface Calls {
  /** `opensrf.system.echo ["hello", 42]`: two RESULTs and the STATUS in one bundle. */
  echo(): Promise<unknown>;
  /** `add 2, 2`. */
  add(): Promise<unknown>;
  /** `big 1048576` (examples/stream.ts): a 1 MB result in partials. */
  big(): Promise<unknown>;
  /** `opensrf.system.echo` of a {@link MID_ECHO_BYTES} string: out and back (in partials), any service. */
  midEcho(): Promise<unknown>;
  /** `opensrf.system.echo` of a 1 MB string: 1 MB out, 1 MB back in partials (any service). */
  bigEcho(): Promise<unknown>;
  /** CONNECT, {@link SESSION_REQUESTS} echo requests to the drone, DISCONNECT. */
  session(): Promise<void>;
}

export function callsTo(client: Client, service: string): Calls {
  return {
    echo: () => client.request(service, "opensrf.system.echo", ECHO_PARAMS).collect(),
    add: () => client.request(service, "add", ADD_PARAMS).first(),
    big: () => client.request(service, "big", [BIG_BYTES]).first(),
    midEcho: () => client.request(service, "opensrf.system.echo", MID_ECHO_PARAMS).collect(),
    bigEcho: () => client.request(service, "opensrf.system.echo", BIG_ECHO_PARAMS).collect(),
    async session() {
      const s = client.session(service);
      await s.connect();
      for (let i = 0; i < SESSION_REQUESTS; i++) await s.request("opensrf.system.echo", ECHO_PARAMS).collect();
      s.disconnect();
    },
  };
}
