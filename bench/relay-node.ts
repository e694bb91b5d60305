/**
 * One hop of the relay ceiling, as its own process: the same path an OpenSRF request takes
 * (caller → router class JID → listener → drone → caller) with no OpenSRF code.
 *
 * - router: receives on `router@dom/<class>`, rewrites `to` to the listener, sends it on.
 * - listener: receives, hands the stanza text to the drone over a Unix socket
 *   (length-prefixed), reads the drone's one-byte "free again" note (as a prefork drone's).
 * - drone: takes stanzas from the listener socket and its own XMPP connection (session
 *   traffic), answers the caller directly with canned replies of the real sizes.
 *
 *   bun bench/relay-node.ts CONFIG.json   (a RelayNodeConfig; prints "ready" once logged in)
 */
import { readFileSync } from "node:fs";
import { createServer, connect as netConnect, type Socket } from "node:net";
import { type RawLogin, RawXmppClient } from "./raw-xmpp.ts";

/** Configuration of one relay process. */
export interface RelayNodeConfig {
  role: "router" | "listener" | "drone";
  login: RawLogin;
  /** router: the JID it forwards to. */
  forwardTo?: string;
  /** listener and drone: the Unix socket between them. */
  socketPath?: string;
  /** drone: whom to answer. */
  caller?: string;
  /** drone: escaped reply bodies (one stanza each) by request kind, the thread's prefix before "-". */
  replies?: Record<string, string[]>;
}

const cfg = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as RelayNodeConfig;
const xmpp = await RawXmppClient.connect(cfg.login);

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
    // A new start tag: the server refuses a `from` that is not ours.
    xmpp.onStanza((xml) => xmpp.send(`<message to='${to}'>${xml.slice(xml.indexOf(">") + 1)}`));
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
    xmpp.onStanza((xml) => {
      if (drone) drone.write(frame(xml));
      else waiting.push(xml);
    });
    break;
  }
  case "drone": {
    const replies = cfg.replies!;
    const caller = cfg.caller!;
    const answer = (xml: string): void => {
      const thread = /<thread>([^<]*)<\/thread>/.exec(xml)?.[1] ?? "";
      const kind = thread.slice(0, thread.indexOf("-"));
      for (const body of replies[kind] ?? []) {
        xmpp.send(
          `<message to='${caller}' from='${xmpp.jid}'><thread>${thread}</thread><body>${body}</body></message>`,
        );
      }
    };
    const sock = netConnect(cfg.socketPath!);
    sock.setNoDelay(true);
    readFrames(sock, (xml) => {
      answer(xml);
      sock.write(Buffer.of(1));
    });
    xmpp.onStanza(answer);
    break;
  }
}
process.stdout.write("ready\n");
// The bench holds our stdin open; its end means the bench is gone, so go too.
process.stdin.on("end", () => process.exit(0));
process.stdin.on("data", () => {});
process.on("SIGTERM", () => {
  xmpp.close();
  process.exit(0);
});
