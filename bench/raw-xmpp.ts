/**
 * The barest XMPP client that can carry OpenSRF traffic: SASL PLAIN login and resource
 * binding on a plain socket, then raw `<message>` strings out and in. No XML parser, no
 * element objects, no OpenSRF code — what the relay ceiling is measured with.
 */
import type { Socket } from "bun";

/** Where and as whom to log in. */
export interface RawLogin {
  host: string;
  port: number;
  domain: string;
  user: string;
  password: string;
  resource: string;
}

const END_MESSAGE = "</message>";

/** A logged-in raw client. Incoming messages arrive whole, as XML text. */
export class RawXmppClient {
  readonly jid: string;
  private buf = "";
  /** Where to look for the next "</message>": the buffer before it was searched already. */
  private scanned = 0;
  /** During login: checks the buffer for what the login step waits for. */
  private check: (() => void) | undefined;
  private online = false;
  private onMessage: (xml: string) => void = () => {};
  private pending: Uint8Array[] = [];
  private readonly decoder = new TextDecoder();
  private readonly encoder = new TextEncoder();

  private constructor(
    private socket: Socket<undefined>,
    login: RawLogin,
  ) {
    this.jid = `${login.user}@${login.domain}/${login.resource}`;
  }

  /** Connects, logs in with SASL PLAIN and binds `login.resource`. */
  static async connect(login: RawLogin): Promise<RawXmppClient> {
    let client: RawXmppClient | undefined;
    const socket = await Bun.connect<undefined>({
      hostname: login.host,
      port: login.port,
      socket: {
        data: (_s, chunk) => client?.onData(chunk),
        drain: () => client?.flush(),
        close: () => client?.onClose(),
        error: () => client?.onClose(),
      },
    });
    socket.setNoDelay(true);
    client = new RawXmppClient(socket, login);
    await client.login(login);
    return client;
  }

  /** Handler for each incoming `<message>…</message>`. */
  onStanza(fn: (xml: string) => void): void {
    this.onMessage = fn;
  }

  /** Writes raw XML; what the kernel does not take now is written on `drain`. */
  send(xml: string): void {
    const bytes = this.encoder.encode(xml);
    if (this.pending.length > 0) {
      this.pending.push(bytes);
      return;
    }
    const n = this.socket.write(bytes);
    if (n < bytes.length) this.pending.push(bytes.subarray(Math.max(n, 0)));
  }

  close(): void {
    try {
      this.socket.end("</stream:stream>");
    } catch {
      // already closed
    }
  }

  private flush(): void {
    while (this.pending.length > 0) {
      const head = this.pending[0]!;
      const n = this.socket.write(head);
      if (n < head.length) {
        this.pending[0] = head.subarray(Math.max(n, 0));
        return;
      }
      this.pending.shift();
    }
  }

  private async login(l: RawLogin): Promise<void> {
    const header = `<?xml version='1.0'?><stream:stream to='${l.domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
    this.send(header);
    await this.until("</stream:features>");
    const token = Buffer.from(`\0${l.user}\0${l.password}`).toString("base64");
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${token}</auth>`);
    const answer = await this.until("success", "failure");
    if (!answer.includes("success")) throw new Error(`login of ${l.user} refused: ${answer}`);
    this.buf = "";
    this.send(header);
    await this.until("</stream:features>");
    this.send(
      `<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${l.resource}</resource></bind></iq>`,
    );
    await this.until("</iq>");
    this.buf = "";
    this.online = true;
  }

  /** Resolves with the buffered text once it holds one of `markers`. */
  private until(...markers: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${markers.join(" or ")} from the XMPP server`)), 10_000);
      this.check = () => {
        if (!markers.some((m) => this.buf.includes(m))) return;
        clearTimeout(timer);
        this.check = undefined;
        const text = this.buf;
        this.buf = "";
        resolve(text);
      };
      this.check();
    });
  }

  private onData(chunk: Uint8Array): void {
    this.buf += this.decoder.decode(chunk, { stream: true });
    if (!this.online) {
      this.check?.();
      return;
    }
    // Messages never nest and their bodies are escaped, so "</message>" ends one.
    let start = 0;
    for (;;) {
      const end = this.buf.indexOf(END_MESSAGE, Math.max(start, this.scanned));
      if (end === -1) break;
      const open = this.buf.indexOf("<message", start);
      const stop = end + END_MESSAGE.length;
      if (open !== -1 && open < end) this.onMessage(this.buf.slice(open, stop));
      start = stop;
    }
    if (start > 0) this.buf = this.buf.slice(start);
    this.scanned = Math.max(0, this.buf.length - END_MESSAGE.length);
  }

  private onClose(): void {
    this.online = false;
  }
}
