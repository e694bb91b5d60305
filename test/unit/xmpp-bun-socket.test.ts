/**
 * The TCP socket the XMPP connection runs on (src/xmpp/bun-socket.ts), against a real
 * loopback server: bytes arrive whole and in order however the kernel takes them, write
 * callbacks run once the bytes are out, end() delivers what is queued, and failures carry
 * the `net.Socket` events and codes @xmpp/connection and our error messages rely on.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { BunTcpSocket } from "../../src/xmpp/bun-socket.ts";

type Server = import("bun").TCPSocketListener<undefined>;
let server: Server | undefined;

afterEach(() => {
  server?.stop(true);
  server = undefined;
});

/** A server that collects what each connection sends, and can close the connection. */
function collector() {
  const received: Buffer[] = [];
  const { promise: done, resolve: ended } = Promise.withResolvers<void>();
  let peer: { end(): void } | undefined;
  const srv: Server = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open: (s) => {
        peer = s;
      },
      data: (_s, d) => void received.push(Buffer.from(d)),
      close: () => ended(),
    },
  });
  server = srv;
  return { port: srv.port, received, done, closePeer: () => peer?.end() };
}

function connected(port: number): Promise<BunTcpSocket> {
  const sock = new BunTcpSocket();
  return new Promise((resolve, reject) => {
    sock.once("connect", () => resolve(sock));
    sock.once("error", reject);
    sock.connect({ host: "127.0.0.1", port });
  });
}

describe("BunTcpSocket", () => {
  test("8 MB written in pieces arrives whole and in order; every callback runs once its bytes are out", async () => {
    const srv = collector();
    const sock = await connected(srv.port);
    const pieces = Array.from({ length: 64 }, (_, i) => `<${i}>${"é".repeat(64 * 1024)}</${i}>`);
    const calls: number[] = [];
    const written = Promise.all(
      pieces.map(
        (p, i) =>
          new Promise<void>((r) =>
            sock.write(p, (err) => {
              calls.push(err ? -1 : i);
              r();
            }),
          ),
      ),
    );
    await written;
    expect(calls).toEqual(pieces.map((_, i) => i));
    sock.end();
    await srv.done;
    expect(Buffer.concat(srv.received).toString("utf8")).toBe(pieces.join(""));
  });

  test("end() right after a large write still delivers all of it, then closes", async () => {
    const srv = collector();
    const sock = await connected(srv.port);
    const big = "x".repeat(4 * 1024 * 1024);
    const closed = new Promise<boolean>((r) => sock.once("close", r));
    sock.write(big);
    sock.end();
    await srv.done;
    expect(Buffer.concat(srv.received).length).toBe(big.length);
    expect(await closed).toBe(false);
  });

  test("the server closing the connection emits close; later writes fail through their callback", async () => {
    const srv = collector();
    const sock = await connected(srv.port);
    const closed = new Promise<boolean>((r) => sock.once("close", r));
    srv.closePeer();
    expect(await closed).toBe(false);
    const err = await new Promise<Error | null | undefined>((r) => sock.write("late", r));
    expect(err?.message).toContain("closed");
  });

  test("a refused connection emits error with code ECONNREFUSED, then close(true)", async () => {
    const srv = collector();
    const port = srv.port;
    server?.stop(true);
    server = undefined;
    const sock = new BunTcpSocket();
    const events: string[] = [];
    const closed = new Promise<void>((resolve) => {
      sock.on("error", (e: Error & { code?: string }) => events.push(`error ${e.code}`));
      sock.on("close", (hadError: boolean) => {
        events.push(`close ${hadError}`);
        resolve();
      });
    });
    sock.connect({ host: "127.0.0.1", port });
    await closed;
    expect(events).toEqual(["error ECONNREFUSED", "close true"]);
  });

  test("a host name is resolved as net.Socket resolves it (dns.lookup); one that does not resolve fails with its code", async () => {
    const srv = collector();
    const sock = new BunTcpSocket();
    await new Promise<void>((resolve, reject) => {
      sock.once("connect", resolve);
      sock.once("error", reject);
      sock.connect({ host: "localhost", port: srv.port });
    }).catch(async (e) => {
      // "localhost" may resolve to ::1 first where the server listens on IPv4 only.
      expect((e as { code?: string }).code).toBe("ECONNREFUSED");
    });
    sock.destroy();
    const bad = new BunTcpSocket();
    const events: string[] = [];
    const closed = new Promise<void>((resolve) => {
      bad.on("error", (e: Error & { code?: string }) => events.push(`error ${e.code}`));
      bad.on("close", (hadError: boolean) => {
        events.push(`close ${hadError}`);
        resolve();
      });
    });
    bad.connect({ host: "no-such-host.invalid", port: srv.port });
    await closed;
    expect(events).toEqual(["error ENOTFOUND", "close true"]);
  });

  test("never TLS: secure is false, so @xmpp/starttls leaves it alone", () => {
    expect(new BunTcpSocket().secure).toBe(false);
  });
});
