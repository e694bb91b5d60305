import { connect as netConnect, type Socket } from "node:net";

/** Escapes text for use in XML character data or attribute values. */
export function xmlEscape(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/** Reads attribute `name` of the first tag in `xml` (raw, not unescaped); undefined if absent. */
export function firstTagAttr(xml: string, name: string): string | undefined {
  const end = xml.indexOf(">");
  const tag = end < 0 ? xml : xml.slice(0, end + 1);
  const re = new RegExp(`\\s${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*=\\s*(['"])(.*?)\\1`, "s");
  return re.exec(tag)?.[2];
}

/**
 * Splits an incoming XMPP byte stream into stream headers and complete top-level stanzas.
 *
 * Incremental (keeps its scan position between chunks) so multi-megabyte stanzas arriving in
 * many chunks cost O(n), and aware of quoted attribute values, since `>` is legal inside them.
 */
class StanzaSplitter {
  private buf = "";
  private pos = 0;
  private depth = 0;
  private start = -1;

  constructor(
    private readonly onHeader: (tag: string) => void,
    private readonly onStanza: (xml: string) => void,
    private readonly onStreamEnd: () => void,
  ) {}

  push(chunk: string): void {
    this.buf += chunk;
    for (;;) {
      const lt = this.buf.indexOf("<", this.pos);
      if (lt < 0) {
        // Only text so far; nothing before the next '<' can end a stanza.
        this.pos = this.buf.length;
        break;
      }
      this.pos = lt;
      const end = this.tokenEnd(lt);
      if (end < 0) break; // token incomplete, wait for more data
      this.token(lt, end);
      this.pos = end;
    }
    // Drop consumed input so the buffer does not grow with the stream's lifetime.
    const keep = this.start >= 0 ? this.start : this.pos;
    if (keep > 0) {
      this.buf = this.buf.slice(keep);
      this.pos -= keep;
      if (this.start >= 0) this.start = 0;
    }
  }

  /** Index just after the token starting at `lt`, or -1 when it is not complete yet. */
  private tokenEnd(lt: number): number {
    const b = this.buf;
    if (b.startsWith("<?", lt)) return endAfter(b, "?>", lt);
    if (b.startsWith("<!--", lt)) return endAfter(b, "-->", lt);
    if (b.startsWith("<![CDATA[", lt)) return endAfter(b, "]]>", lt);
    // Too short yet to tell a comment or CDATA from a declaration.
    if (b[lt + 1] === "!" && b.length - lt < 9) return -1;
    let quote = "";
    for (let i = lt + 1; i < b.length; i++) {
      const c = b[i];
      if (quote) {
        if (c === quote) quote = "";
      } else if (c === '"' || c === "'") {
        quote = c;
      } else if (c === ">") {
        return i + 1;
      }
    }
    return -1;
  }

  private token(lt: number, end: number): void {
    const b = this.buf;
    const second = b[lt + 1];
    if (second === "?" || second === "!") return; // declaration, comment, CDATA: no structure
    const tag = b.slice(lt, end);
    if (second === "/") {
      if (this.depth === 0) {
        if (/^<\/stream:stream\s*>$/.test(tag)) this.onStreamEnd();
        return;
      }
      this.depth--;
      if (this.depth === 0) {
        this.onStanza(b.slice(this.start, end));
        this.start = -1;
      }
      return;
    }
    const selfClosing = b[end - 2] === "/";
    if (this.depth === 0 && /^<stream:stream[\s>]/.test(tag)) {
      this.onHeader(tag);
      return;
    }
    if (this.depth === 0) {
      if (selfClosing) {
        this.onStanza(tag);
        return;
      }
      this.start = lt;
    }
    if (!selfClosing) this.depth++;
  }
}

function endAfter(b: string, marker: string, from: number): number {
  const i = b.indexOf(marker, from);
  return i < 0 ? -1 : i + marker.length;
}

/** Options for {@link RawXmppConnection.connect}. */
export interface RawConnectOptions {
  host: string;
  port: number;
  /** Connect timeout in ms (default 5000). */
  timeoutMs?: number;
}

/**
 * A minimal XMPP client socket: raw XML out, whole stanzas (as strings) in.
 *
 * It does no negotiation by itself, so tests control the exact bytes on the wire (as real
 * OpenSRF C and Perl clients do) and see exactly what the server sends back.
 */
export class RawXmppConnection {
  private readonly stanzas: string[] = [];
  private readonly headers: string[] = [];
  private waiters: Array<() => void> = [];
  private ended = false;
  private error: Error | undefined;

  private constructor(private readonly socket: Socket) {
    const splitter = new StanzaSplitter(
      (h) => {
        this.headers.push(h);
        this.wake();
      },
      (s) => {
        this.stanzas.push(s);
        this.wake();
      },
      () => {
        this.ended = true;
        this.wake();
      },
    );
    socket.setEncoding("utf8"); // decodes multi-byte characters split across chunks
    socket.setNoDelay(true);
    socket.on("data", (chunk: string) => splitter.push(chunk));
    socket.on("error", (err) => {
      this.error = err;
      this.wake();
    });
    socket.on("close", () => {
      this.ended = true;
      this.wake();
    });
  }

  /** Opens a TCP connection; no XML is sent yet. */
  static connect(opts: RawConnectOptions): Promise<RawXmppConnection> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host: opts.host, port: opts.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${opts.host}:${opts.port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        resolve(new RawXmppConnection(socket));
      });
    });
  }

  /** True once the server closed the stream or the socket. */
  get closed(): boolean {
    return this.ended || this.error !== undefined;
  }

  /** Writes raw XML (the socket queues what the kernel does not take at once). */
  send(xml: string): void {
    this.socket.write(xml);
  }

  /**
   * Sends a stream header and waits for the server's.
   * Without `version` this is the pre-1.0 form real OpenSRF clients send (no stream features).
   */
  async openStream(opts: {
    to: string;
    version?: string;
    timeoutMs?: number;
  }): Promise<{ id: string; header: string }> {
    const version = opts.version ? ` version='${xmlEscape(opts.version)}'` : "";
    this.send(
      `<stream:stream to='${xmlEscape(opts.to)}' xmlns='jabber:client' ` +
        `xmlns:stream='http://etherx.jabber.org/streams'${version}>`,
    );
    const header = await this.waitFor(() => this.headers.shift(), opts.timeoutMs ?? 5000, "stream header");
    const id = firstTagAttr(header, "id");
    if (id === undefined) throw new Error(`server stream header has no id: ${header}`);
    return { id, header };
  }

  /** Waits for the next complete top-level stanza (including `<stream:features>`, `<stream:error>`). */
  nextStanza(timeoutMs = 5000): Promise<string> {
    return this.waitFor(() => this.stanzas.shift(), timeoutMs, "stanza");
  }

  /** Waits for the next stream header (after a stream restart, e.g. SASL success). */
  nextHeader(timeoutMs = 5000): Promise<string> {
    return this.waitFor(() => this.headers.shift(), timeoutMs, "stream header");
  }

  /** Closes the stream politely if still open, then the socket. */
  close(): void {
    if (!this.closed && this.socket.writable) this.socket.end("</stream:stream>");
    // Do not wait for the server's close handshake; tests just want the connection gone.
    setTimeout(() => this.socket.destroy(), 200).unref?.();
  }

  private waitFor(take: () => string | undefined, timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const v = take();
        if (v !== undefined) {
          resolve(v);
          return true;
        }
        if (this.error) {
          reject(this.error);
          return true;
        }
        if (this.ended) {
          reject(new Error(`connection closed while waiting for a ${what}`));
          return true;
        }
        return false;
      };
      if (check()) return;
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (): void => {
        if (check()) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== waiter);
        }
      };
      this.waiters.push(waiter);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** Connection target shared by the helpers below. */
export interface XmppTarget {
  host: string;
  port: number;
  domain: string;
}

/** Opens a 1.0 stream on `c` and authenticates with SASL PLAIN; throws with the server's answer. */
async function saslPlain(
  c: RawXmppConnection,
  t: XmppTarget & { user: string; password: string },
  timeoutMs: number,
): Promise<void> {
  await c.openStream({ to: t.domain, version: "1.0", timeoutMs });
  const features = await c.nextStanza(timeoutMs);
  if (!features.includes("PLAIN")) throw new Error(`server does not offer SASL PLAIN: ${features}`);
  const token = Buffer.from(`\0${t.user}\0${t.password}`, "utf8").toString("base64");
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${token}</auth>`);
  const answer = await c.nextStanza(timeoutMs);
  if (!answer.startsWith("<success")) throw new Error(`SASL PLAIN login of ${t.user} failed: ${answer}`);
}

/** An authenticated raw stream: raw XML out, whole stanzas in. */
export interface RawSession {
  /** Our full JID as the server bound it. */
  readonly jid: string;
  /** Writes raw XML to the stream as is. */
  send(xml: string): void;
  /** The next complete top-level stanza from the server, as raw XML text. */
  nextStanza(timeoutMs?: number): Promise<string>;
  /** Closes the stream and the socket. */
  close(): void;
}

/**
 * Logs in the way current clients do: a 1.0 stream, SASL PLAIN, stream restart, resource
 * bind. Unlike a legacy (jabber:iq:auth) login, prosody then applies its authenticated stanza
 * size limit to the session (it keeps the 10,000-byte pre-auth limit for legacy logins).
 * Throws with the server's answer at the first step that fails.
 */
export async function saslLogin(
  t: XmppTarget & { user: string; password: string; resource: string; timeoutMs?: number },
): Promise<RawSession> {
  const timeoutMs = t.timeoutMs ?? 5000;
  const c = await RawXmppConnection.connect({ host: t.host, port: t.port, timeoutMs });
  try {
    await saslPlain(c, t, timeoutMs);
    await c.openStream({ to: t.domain, version: "1.0", timeoutMs });
    await c.nextStanza(timeoutMs); // stream features after the restart
    c.send(
      `<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>` +
        `<resource>${xmlEscape(t.resource)}</resource></bind></iq>`,
    );
    const bound = await c.nextStanza(timeoutMs);
    const jid = /<jid>([^<]+)<\/jid>/.exec(bound)?.[1];
    if (firstTagAttr(bound, "type") !== "result" || jid === undefined)
      throw new Error(`resource bind of ${t.user} failed: ${bound}`);
    return { jid, send: (xml) => c.send(xml), nextStanza: (ms = 5000) => c.nextStanza(ms), close: () => c.close() };
  } catch (err) {
    c.close();
    throw err;
  }
}

/**
 * Authenticates with SASL PLAIN on a fresh connection and closes it: proves a real login works.
 * Throws with the server's answer when it is not `<success>`.
 */
export async function saslPlainCheck(
  t: XmppTarget & { user: string; password: string; timeoutMs?: number },
): Promise<void> {
  const timeoutMs = t.timeoutMs ?? 5000;
  const c = await RawXmppConnection.connect({ host: t.host, port: t.port, timeoutMs });
  try {
    await saslPlain(c, t, timeoutMs);
  } finally {
    c.close();
  }
}

/**
 * Creates an account with in-band registration (XEP-0077) on a fresh, unauthenticated stream.
 * Much faster than the servers' admin CLIs, which start a whole runtime per call.
 */
export async function inBandRegister(
  t: XmppTarget & { user: string; password: string; timeoutMs?: number },
): Promise<void> {
  const timeoutMs = t.timeoutMs ?? 5000;
  const c = await RawXmppConnection.connect({ host: t.host, port: t.port, timeoutMs });
  try {
    await c.openStream({ to: t.domain, version: "1.0", timeoutMs });
    await c.nextStanza(timeoutMs); // stream features
    c.send(
      `<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>` +
        `<username>${xmlEscape(t.user)}</username><password>${xmlEscape(t.password)}</password>` +
        `</query></iq>`,
    );
    const answer = await c.nextStanza(timeoutMs);
    if (!answer.startsWith("<iq") || firstTagAttr(answer, "type") !== "result") {
      throw new Error(`in-band registration of ${t.user} failed: ${answer}`);
    }
  } finally {
    c.close();
  }
}
