/**
 * The relay ceiling's bus endpoints (bench/relay.ts, bench/relay-node.ts): the barest client
 * of either bus that can carry OpenSRF traffic — on XMPP a raw login and `<message>` strings
 * (bench/raw-xmpp.ts), on Redis RPUSH and a BLPOP loop of JSON elements on RESP connections —
 * with no OpenSRF code. Each process of the relay holds one.
 */

import { RespConnection } from "../src/redis/resp-client.ts";
import { encodeStanza, escapeText } from "../src/xmpp/stanza.ts";
import { type RawLogin, RawXmppClient } from "./raw-xmpp.ts";

/** How one relay endpoint joins its bus. */
export type RawBusLogin =
  | { kind: "xmpp"; login: RawLogin }
  | {
      kind: "redis";
      host: string;
      port: number;
      user: string;
      password: string;
      /** Our address: where replies to us are RPUSHed (`opensrf:client:…`). */
      address: string;
      /** The list we BLPOP (our inbox, or the router's or service's queue we stand for). */
      pop: string;
    };

/** One endpoint: messages in whole, as wire text; messages out in the bus's own form. */
export interface RawBus {
  /** Our JID or inbox address. */
  readonly address: string;
  onMessage(fn: (text: string) => void): void;
  /**
   * One OpenSRF message to `to` from us, as a client sends it: `body` is the JSON text of the
   * osrfMessage array (escaped here for XMPP). On Redis it is RPUSHed to `key` (default `to`):
   * a request for `opensrf:service:_:_:S` goes to the router's queue.
   */
  send(to: string, thread: string, body: string, key?: string): void;
  /**
   * A drone's reply to `to`: `wireBody` already in the bus's form ({@link wireBody}), so the
   * canned replies cost the drone nothing per call but the send.
   */
  reply(to: string, thread: string, wireBody: string): void;
  /** A message received, sent on to `to` as the router does (XMPP: readdressed; Redis: unchanged). */
  forward(text: string, to: string): void;
  threadOf(text: string): string | undefined;
  fromOf(text: string): string;
  close(): void;
}

/** Connects one endpoint. */
export async function connectRawBus(l: RawBusLogin): Promise<RawBus> {
  return l.kind === "xmpp" ? xmppBus(await RawXmppClient.connect(l.login)) : redisBus(l);
}

/** A body (the JSON text of an osrfMessage array) as `bus` carries it: XML-escaped on XMPP, as is on Redis. */
export function wireBody(bus: RawBusLogin["kind"], body: string): string {
  return bus === "xmpp" ? escapeText(body) : body;
}

function xmppBus(xmpp: RawXmppClient): RawBus {
  let n = 0;
  return {
    address: xmpp.jid,
    onMessage: (fn) => xmpp.onStanza(fn),
    send(to, thread, body) {
      xmpp.send(
        encodeStanza({
          to,
          from: xmpp.jid,
          thread,
          body,
          routerFrom: "",
          routerTo: "",
          routerClass: "",
          routerCommand: "",
          xid: `${++n}`,
        }),
      );
    },
    reply: (to, thread, body) =>
      xmpp.send(`<message to='${to}' from='${xmpp.jid}'><thread>${thread}</thread><body>${body}</body></message>`),
    // A new start tag: the server refuses a `from` that is not ours.
    forward: (xml, to) => xmpp.send(`<message to='${to}'>${xml.slice(xml.indexOf(">") + 1)}`),
    threadOf: (xml) => /<thread>([^<]*)<\/thread>/.exec(xml)?.[1],
    fromOf: (xml) => / from='([^']*)'| from="([^"]*)"/.exec(xml)?.slice(1).find(Boolean) ?? "",
    close: () => xmpp.close(),
  };
}

async function redisBus(l: Extract<RawBusLogin, { kind: "redis" }>): Promise<RawBus> {
  const login = { host: l.host, port: l.port, username: l.user, password: l.password };
  // A BLPOP holds its connection until it returns: sending needs another.
  const [reader, writer] = await Promise.all([RespConnection.connect(login), RespConnection.connect(login)]);
  let handler: (text: string) => void = () => {};
  let open = true;
  void (async () => {
    while (open) {
      let got: unknown;
      try {
        got = await reader.command(["BLPOP", l.pop, "1"]);
      } catch (e) {
        if (!reader.isOpen) return;
        // An error reply (a key the account may not read): say so, and do not spin on it.
        process.stderr.write(`relay: BLPOP ${l.pop} failed: ${(e as Error).message}\n`);
        await Bun.sleep(1000);
        continue;
      }
      if (Array.isArray(got) && typeof got[1] === "string") handler(got[1]);
    }
  })();
  const push = (key: string, text: string) => void writer.command(["RPUSH", key, text]).catch(() => {});
  let n = 0;
  // The envelope as src/redis/envelope.ts lays it out for a request or a result.
  const envelope = (to: string, thread: string, body: string) =>
    `{"to":${JSON.stringify(to)},"from":${JSON.stringify(l.address)},"thread":${JSON.stringify(thread)},"osrf_xid":"${++n}","body":${body}}`;
  return {
    address: l.address,
    onMessage: (fn) => {
      handler = fn;
    },
    send: (to, thread, body, key = to) => push(key, envelope(to, thread, body)),
    reply: (to, thread, body) => push(to, envelope(to, thread, body)),
    forward: (text, to) => push(to, text),
    threadOf: (text) => /"thread":"([^"]*)"/.exec(text)?.[1],
    fromOf: (text) => /"from":"([^"]*)"/.exec(text)?.[1] ?? "",
    close() {
      open = false;
      reader.destroy();
      writer.destroy();
    },
  };
}
