/**
 * Redis bus addresses: parsed as C's parse_bus_address does, and where each kind of `to` is
 * pushed (a client's service request goes to its own domain's router queue).
 */
import { describe, expect, test } from "bun:test";
import {
  clientAddress,
  deliveryTarget,
  parseBusAddress,
  redisAddresses,
  serviceQueue,
} from "../../src/redis/addresses.ts";

describe("addresses", () => {
  test("the well-known ones", () => {
    expect(redisAddresses.router("router", "private.localhost")).toBe("opensrf:router:router:private.localhost");
    expect(redisAddresses.service("router", "private.localhost", "opensrf.math")).toBe(
      "opensrf:service:_:_:opensrf.math",
    );
    expect(serviceQueue("opensrf", "localhost", "opensrf.math")).toBe("opensrf:service:opensrf:localhost:opensrf.math");
    expect(clientAddress("opensrf", "localhost", "vm", 8828, "636c1379")).toBe(
      "opensrf:client:opensrf:localhost:vm:8828:636c1379",
    );
  });

  test("parseBusAddress reads purpose, username, domain and the rest", () => {
    expect(parseBusAddress("opensrf:client:opensrf:localhost:vm:8828:636c1379")).toEqual({
      purpose: "client",
      username: "opensrf",
      domain: "localhost",
      remainder: "vm:8828:636c1379",
    });
    expect(parseBusAddress("opensrf:router:router:localhost")?.remainder).toBe("");
    expect(parseBusAddress("router@localhost/opensrf.math")).toBeUndefined();
    expect(parseBusAddress("opensrf:client::localhost")).toBeUndefined();
  });

  test("deliveryTarget", () => {
    const t = (to: string) => deliveryTarget(to, "router", "private.localhost");
    expect(t("opensrf:service:_:_:opensrf.math")).toEqual({
      queue: "opensrf:router:router:private.localhost",
      domain: "private.localhost",
    });
    expect(t("opensrf:service:opensrf:public.localhost:opensrf.math")).toEqual({
      queue: "opensrf:service:opensrf:public.localhost:opensrf.math",
      domain: "public.localhost",
    });
    expect(t("opensrf:client:opensrf:public.localhost:vm:1:ab")).toEqual({
      queue: "opensrf:client:opensrf:public.localhost:vm:1:ab",
      domain: "public.localhost",
    });
    expect(t("opensrf:router:router:public.localhost")?.domain).toBe("public.localhost");
    expect(t("opensrf:service:_:_")).toBeUndefined();
    expect(t("opensrf:stream:a:b")).toBeUndefined();
    expect(t("router@localhost/opensrf.math")).toBeUndefined();
  });
});
