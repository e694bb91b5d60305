/**
 * One hop of the relay ceiling, as its own process: the same path an OpenSRF request takes
 * (caller → router → listener → drone → caller) with no OpenSRF code, on either bus
 * (bench/raw-bus.ts).
 *
 * - router: receives on its class JID (XMPP) or pops its queue (Redis), sends it on to the
 *   listener (XMPP: readdressed; Redis: unchanged, to the service queue).
 * - listener: receives (Redis: pops the service queue), hands the message text to the drone
 *   over a Unix socket (length-prefixed), reads the drone's one-byte "free again" note (as a
 *   prefork drone's).
 * - drone: takes messages from the listener socket and its own inbox (session traffic),
 *   answers the caller directly with canned replies of the real sizes.
 *
 *   bun bench/relay-node.ts CONFIG.json   (a RelayNodeConfig; prints "ready" once logged in)
 */
import { readFileSync } from "node:fs";
import { createServer, connect as netConnect, type Socket } from "node:net";
import { connectRawBus, type RawBusLogin } from "./raw-bus.ts";

/** Configuration of one relay process. */
export interface RelayNodeConfig {
  role: "router" | "listener" | "drone";
  login: RawBusLogin;
  /** router: where it forwards to (the listener's JID, or the service queue). */
  forwardTo?: string;
  /** listener and drone: the Unix socket between them. */
  socketPath?: string;
  /** drone: whom to answer. */
  caller?: string;
  /** drone: reply bodies in the bus's form (one message each) by request kind, the thread's prefix before "-". */
  replies?: Record<string, string[]>;
}

const cfg = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as RelayNodeConfig;
const bus = await connectRawBus(cfg.login);

function frame(text: string): Buffer {
  const body = Buffer.from(text);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** Calls `fn` with each length-prefixed frame read from `sock`. */
function readFrames(sock: Socket, fn: (text: string) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  sock.on("data", (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const n = buf.readUInt32BE(0);
      if (buf.length < 4 + n) break;
      fn(buf.toString("utf8", 4, 4 + n));
      buf = buf.subarray(4 + n);
    }
  });
}

switch (cfg.role) {
  case "router": {
    const to = cfg.forwardTo!;
    bus.onMessage((text) => bus.forward(text, to));
    break;
  }
  case "listener": {
    let drone: Socket | undefined;
    const waiting: string[] = [];
    const server = createServer((sock) => {
      sock.setNoDelay(true);
      drone = sock;
      sock.on("data", () => {}); // the drone's "free" notes
      for (const xml of waiting.splice(0)) sock.write(frame(xml));
    });
    await new Promise<void>((resolve) => server.listen(cfg.socketPath!, resolve));
    bus.onMessage((text) => {
      if (drone) drone.write(frame(text));
      else waiting.push(text);
    });
    break;
  }
  case "drone": {
    const replies = cfg.replies!;
    const caller = cfg.caller!;
    const answer = (text: string): void => {
      const thread = bus.threadOf(text) ?? "";
      const kind = thread.slice(0, thread.indexOf("-"));
      for (const body of replies[kind] ?? []) bus.reply(caller, thread, body);
    };
    const sock = netConnect(cfg.socketPath!);
    sock.setNoDelay(true);
    readFrames(sock, (xml) => {
      answer(xml);
      sock.write(Buffer.of(1));
    });
    bus.onMessage(answer);
    break;
  }
}
process.stdout.write("ready\n");
// The bench holds our stdin open; its end means the bench is gone, so go too.
process.stdin.on("end", () => process.exit(0));
process.stdin.on("data", () => {});
process.on("SIGTERM", () => {
  bus.close();
  process.exit(0);
});
