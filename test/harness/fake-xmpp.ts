/**
 * An XMPP {@link BusConnection} in memory for the client and router unit tests: what is sent
 * is kept (filled in as it would arrive), and the test delivers what arrives, replies as a
 * drone would, or loses the connection.
 */
import type { BusConnection } from "../../src/bus/types.ts";
import { encodeBody } from "../../src/protocol/codec.ts";
import type { OsrfMessage } from "../../src/protocol/types.ts";
import { jidDomain } from "../../src/router/router.ts";
import { xmppAddresses } from "../../src/xmpp/addresses.ts";
import { completeStanza } from "../../src/xmpp/stanza.ts";
import type { OutgoingStanza, Stanza } from "../../src/xmpp/types.ts";

/** A client's JID, as OpenSRF names one. */
export const CLIENT_JID = "opensrf@localhost/_testhost_1795547651.056703_28979";

export class FakeXmppConnection implements BusConnection {
  readonly kind = "xmpp" as const;
  readonly addresses = xmppAddresses;
  /** Every stanza sent, with its defaults filled in and `from` our JID. */
  readonly sent: Stanza[] = [];
  closed = false;
  /** When set, `send` throws it (e.g. a stanza over the size limit). */
  failWith: Error | undefined;
  private handler: ((s: Stanza) => void) | undefined;
  private readonly offline: Array<() => void> = [];

  constructor(readonly jid = CLIENT_JID) {}

  get address(): string {
    return this.jid;
  }

  get domain(): string {
    return jidDomain(this.jid);
  }

  send(s: OutgoingStanza): void {
    if (this.failWith) throw this.failWith;
    this.sent.push(completeStanza(s, this.jid));
  }

  onMessage(h: (s: Stanza) => void): void {
    this.handler = h;
  }

  wireText(s: OutgoingStanza): string {
    return JSON.stringify(s);
  }

  onOnline(): void {}

  onOffline(h: () => void): void {
    this.offline.push(h);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** A stanza arriving for us; `to` defaults to our JID. */
  deliver(s: Partial<Stanza> & { from: string }): void {
    if (!this.handler) throw new Error(`${this.jid} has no stanza handler`);
    this.handler(completeStanza({ to: this.jid, ...s }, s.from));
  }

  /** Reply on the thread of `to`, as a drone would: body of `msgs`, xid copied. */
  reply(to: Stanza, from: string, msgs: OsrfMessage[]): void {
    this.deliver({ from, thread: to.thread, body: encodeBody(msgs), xid: to.xid });
  }

  /** The connection breaks: every offline handler is told. */
  lose(): void {
    for (const h of this.offline) h();
  }

  /** What was sent since the last take. */
  take(): Stanza[] {
    return this.sent.splice(0);
  }
}
