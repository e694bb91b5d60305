import { createHash } from "node:crypto";
import { firstTagAttr, type RawSession, RawXmppConnection, xmlEscape } from "./raw-xmpp.ts";

/** Options for {@link legacyLogin}. */
export interface LegacyLoginOptions {
  host: string;
  port: number;
  /** XMPP domain, e.g. "localhost". */
  domain: string;
  user: string;
  password: string;
  resource: string;
  /**
   * "digest": what OpenSRF's C clients send, `<digest>` = hex(sha1(streamId + password)), iq id 123456789.
   * "plain": what OpenSRF's Perl clients send, `<password>` in clear, iq id 123.
   */
  mode: "digest" | "plain";
  /** Timeout for connect and each server answer, in ms (default 5000). */
  timeoutMs?: number;
}

/** An authenticated raw XMPP session, as a real OpenSRF C or Perl process has on the wire. */
export interface LegacySession extends RawSession {
  /** The stream id the server assigned (input of the digest). */
  readonly streamId: string;
}

/**
 * Logs in exactly like OpenSRF's C (`digest`) or Perl (`plain`) clients do: a pre-1.0 stream
 * (no `version`, so no SASL) and one `jabber:iq:auth` set (XEP-0078), no presence, no roster.
 * Rejects with the server's answer if it is not a plain `<iq type='result'/>`.
 */
export async function legacyLogin(opts: LegacyLoginOptions): Promise<LegacySession> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const conn = await RawXmppConnection.connect({ host: opts.host, port: opts.port, timeoutMs });
  let streamId: string | undefined;
  try {
    // The pre-1.0 header (no version attribute) OpenSRF's C clients send.
    conn.send(
      `<stream:stream to='${xmlEscape(opts.domain)}' xmlns='jabber:client' ` +
        `xmlns:stream='http://etherx.jabber.org/streams'>`,
    );
    const header = await conn.nextHeader(timeoutMs);
    streamId = firstTagAttr(header, "id");
    if (streamId === undefined) throw new Error(`server stream header has no id: ${header}`);

    const id = opts.mode === "digest" ? "123456789" : "123";
    const secret =
      opts.mode === "digest"
        ? `<digest>${createHash("sha1")
            .update(streamId + opts.password, "utf8")
            .digest("hex")}</digest>`
        : `<password>${xmlEscape(opts.password)}</password>`;
    conn.send(
      `<iq id='${id}' type='set'><query xmlns='jabber:iq:auth'>` +
        `<username>${xmlEscape(opts.user)}</username>${secret}` +
        `<resource>${xmlEscape(opts.resource)}</resource></query></iq>`,
    );

    for (;;) {
      const stanza = await conn.nextStanza(timeoutMs);
      // Prosody sends stream features even on pre-1.0 streams; the C client ignores them too.
      if (stanza.startsWith("<stream:features")) continue;
      if (stanza.startsWith("<stream:error"))
        throw new Error(`legacy ${opts.mode} login of ${opts.user} failed: ${stanza}`);
      if (!stanza.startsWith("<iq") || firstTagAttr(stanza, "id") !== id) continue;
      // A result that carries a <query> is the field list (prosody's answer to <digest>), not success.
      if (firstTagAttr(stanza, "type") !== "result" || /<query[\s>/]/.test(stanza)) {
        throw new Error(`legacy ${opts.mode} login of ${opts.user} failed: ${stanza}`);
      }
      break;
    }
  } catch (err) {
    conn.close();
    throw err;
  }
  return {
    jid: `${opts.user}@${opts.domain}/${opts.resource}`,
    streamId,
    send: (xml) => conn.send(xml),
    nextStanza: (t = 5000) => conn.nextStanza(t),
    close: () => conn.close(),
  };
}
