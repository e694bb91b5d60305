import { decodeBody, encodeBody } from "../src/protocol/codec.ts";
import { makeResource } from "../src/protocol/ids.ts";
import { complete, methodException, result } from "../src/protocol/messages.ts";
import { StatusCode, Texts } from "../src/protocol/status.ts";
import { XmppConnection } from "../src/xmpp/connection.ts";
import { TEST_USERS, type XmppEndpoint } from "./osrf-config.ts";
import { quietLogger } from "./quiet-logger.ts";

/**
 * A minimal OpenSRF listener that answers by itself (no drones), for testing the bus:
 * `whoami` returns its label, `echo` returns each param; anything else is a 404.
 * It speaks the real protocol over a real XMPP connection.
 */
export class TestListener {
  served = 0;
  private constructor(
    readonly conn: XmppConnection,
    readonly service: string,
    readonly label: string,
  ) {}

  static async start(xmpp: XmppEndpoint, service: string, label: string): Promise<TestListener> {
    const logger = quietLogger(service);
    const conn = await XmppConnection.connect({
      host: xmpp.host,
      port: xmpp.port,
      domain: xmpp.domain,
      username: TEST_USERS[0]![0],
      password: TEST_USERS[0]![1],
      resource: makeResource(`${service}_listener_${label}`, "test"),
      maxStanzaSize: 10 * 1024 * 1024,
      logger,
      reconnect: false,
    });
    const l = new TestListener(conn, service, label);
    conn.onStanza((s) => {
      if (s.error) return;
      const to = s.routerFrom || s.from;
      const out = [];
      for (const m of decodeBody(s.body)) {
        if (m.type !== "REQUEST") continue;
        l.served++;
        const { method, params } = m.payload;
        if (method === "whoami") out.push(result(m.threadTrace, label), complete(m.threadTrace));
        else if (method === "echo") out.push(...params.map((p) => result(m.threadTrace, p)), complete(m.threadTrace));
        else out.push(methodException(m.threadTrace, StatusCode.NOTFOUND, Texts.methodNotFound(method, service)));
      }
      if (out.length) conn.send({ to, thread: s.thread, body: encodeBody(out), xid: s.xid });
    });
    return l;
  }

  private routerCommand(command: "register" | "unregister"): void {
    this.conn.send({
      to: `router@${this.conn.domain}/router`,
      routerClass: this.service,
      routerCommand: command,
      body: command === "register" ? "registering" : "unregistering",
    });
  }

  register(): void {
    this.routerCommand("register");
  }

  unregister(): void {
    this.routerCommand("unregister");
  }

  /** Disconnect without unregistering, like a crashed listener. */
  async close(): Promise<void> {
    await this.conn.close();
  }
}
