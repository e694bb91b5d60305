import { client, type XmppClient } from "@xmpp/client";
import type { XmlElement } from "@xmpp/xml";
import type { XmppServer } from "./xmpp-server.ts";

/** A logged-in @xmpp/client session plus a queue of the stanzas it received. */
export interface ClientSession {
  readonly xmpp: XmppClient;
  /** Full JID as bound by the server. */
  readonly jid: string;
  /** Resolves with the next received stanza matching `pred` (default: any), or rejects after `timeoutMs`. */
  next(pred?: (el: XmlElement) => boolean, timeoutMs?: number): Promise<XmlElement>;
  /** Ends the stream; never throws. */
  close(): Promise<void>;
}

/**
 * Logs in with @xmpp/client over the plain c2s socket using SASL PLAIN (it will not pick
 * PLAIN without TLS unless told to), with automatic reconnects off so tests stay in control.
 */
export async function xmppClientLogin(
  server: Pick<XmppServer, "host" | "port" | "domain">,
  username: string,
  password: string,
  resource = "test",
): Promise<ClientSession> {
  const xmpp = client({
    service: `xmpp://${server.host}:${server.port}`,
    domain: server.domain,
    resource,
    credentials: (auth) => auth({ username, password }, "PLAIN"),
  });
  xmpp.reconnect.stop();
  xmpp.on("error", () => {}); // surfaced through start() or the test's own expectations
  const inbox: XmlElement[] = [];
  let waiters: Array<() => void> = [];
  xmpp.on("stanza", (el) => {
    inbox.push(el);
    for (const w of [...waiters]) w();
  });
  const jid = await xmpp.start();
  return {
    xmpp,
    jid: jid.toString(),
    next(pred = () => true, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const take = (): boolean => {
          const i = inbox.findIndex(pred);
          if (i < 0) return false;
          resolve(inbox.splice(i, 1)[0]!);
          return true;
        };
        if (take()) return;
        const waiter = (): void => {
          if (take()) done();
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${jid}: no matching stanza within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== waiter);
        };
        waiters.push(waiter);
      });
    },
    async close() {
      await xmpp.stop().catch(() => {});
    },
  };
}
