import { describe, expect, test } from "bun:test";
import net from "node:net";
import { writeToSocket } from "../../src/xmpp/socket-write.ts";

/** A loopback server that reads nothing for `holdMs`, then everything; resolves with what it got. */
async function slowReader(holdMs: number): Promise<{ port: number; received: Promise<Buffer>; close(): void }> {
  let done!: (b: Buffer) => void;
  const received = new Promise<Buffer>((r) => (done = r));
  const server = net.createServer((s) => {
    const chunks: Buffer[] = [];
    s.pause();
    setTimeout(() => s.resume(), holdMs);
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("end", () => done(Buffer.concat(chunks)));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as net.AddressInfo).port, received, close: () => server.close() };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

describe("writeToSocket", () => {
  test("keeps every byte in order when the kernel takes only part of a write", async () => {
    const reader = await slowReader(300);
    const socket = await connect(reader.port);
    let streamWrites = 0;
    const write = socket.write.bind(socket);
    socket.write = ((...args: Parameters<typeof socket.write>) => {
      streamWrites++;
      return write(...args);
    }) as typeof socket.write;
    const parts: string[] = [];
    // 24 MB while nobody reads: the socket buffers fill, writes are cut short and queue up.
    for (let i = 0; i < 400; i++) {
      // Multi-byte characters, so that a cut can fall inside one (bytes, not characters).
      const part = `<${i}:${"é€x".repeat(20_000)}:${i}>`;
      parts.push(part);
      writeToSocket(socket, part);
      if (i % 50 === 0) await Bun.sleep(1);
    }
    await new Promise<void>((r) => socket.end(r));
    const got = await reader.received;
    reader.close();
    expect(got.length).toBe(Buffer.byteLength(parts.join("")));
    expect(got.equals(Buffer.from(parts.join("")))).toBe(true);
    // Some writes had to wait behind the stream: the fallback was exercised.
    expect(streamWrites).toBeGreaterThan(0);
  });

  test("small writes to a reading peer arrive whole and in order", async () => {
    const reader = await slowReader(0);
    const socket = await connect(reader.port);
    const parts = Array.from({ length: 2000 }, (_, i) => `<message n='${i}'>ünïcödé ${i}</message>`);
    for (const p of parts) writeToSocket(socket, p);
    await new Promise<void>((r) => socket.end(r));
    const got = await reader.received;
    reader.close();
    expect(got.toString("utf8")).toBe(parts.join(""));
  });

  test("after end() a write takes the stream's way, which refuses it, and nothing more is sent", async () => {
    const reader = await slowReader(0);
    const socket = await connect(reader.port);
    const errors: string[] = [];
    socket.on("error", (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
    writeToSocket(socket, "<a/>");
    socket.end();
    writeToSocket(socket, "<late/>");
    const got = await reader.received;
    reader.close();
    expect(got.toString()).toBe("<a/>");
    await Bun.sleep(10);
    expect(errors).toEqual(["ERR_STREAM_WRITE_AFTER_END"]);
  });

  test("a write to a destroyed socket does not throw", async () => {
    const reader = await slowReader(0);
    const socket = await connect(reader.port);
    socket.on("error", () => {});
    socket.destroy();
    expect(() => writeToSocket(socket, "<presence/>")).not.toThrow();
    reader.close();
  });
});
