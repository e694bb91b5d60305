/**
 * In-memory stand-ins for the host's dependencies, so a service (or the host itself) can
 * be exercised without an XMPP server: a transport that records what is sent, a logger
 * that records lines, and a client that answers from a table.
 */
import type { BusAddresses, BusConnection } from "../bus/types.ts";
import type { ClientSession, OsrfClient, PendingRequest, RequestOptions } from "../client/types.ts";
import type { Logger } from "../log/types.ts";
import type { JsonValue } from "../protocol/types.ts";
import { xmppAddresses } from "../xmpp/addresses.ts";
import type { Transport } from "../xmpp/transport.ts";
import type { OutgoingStanza, Stanza } from "../xmpp/types.ts";

const EMPTY_STANZA: Omit<Stanza, "to" | "from"> = {
  thread: "",
  body: "",
  routerFrom: "",
  routerTo: "",
  routerClass: "",
  routerCommand: "",
  xid: "",
};

/**
 * A {@link Transport} (and XMPP-addressed {@link BusConnection}) that keeps every sent stanza
 * in `sent`, and optionally passes each one on (`onSend`), e.g. to another MemoryTransport's
 * `deliver`.
 */
export class MemoryTransport implements Transport, BusConnection {
  readonly kind = "xmpp" as const;
  readonly addresses: BusAddresses = xmppAddresses;
  readonly sent: OutgoingStanza[] = [];
  private handler: ((s: Stanza) => unknown) | undefined;
  /** When set, `send` throws it (e.g. to imitate a stanza over the size limit). */
  failWith: Error | undefined;

  /**
   * @param onSend Called with each sent stanza as it would arrive (every field filled in,
   *   `from` our JID), after it is recorded.
   */
  constructor(
    readonly jid = "opensrf@localhost/test_drone",
    readonly domain = "localhost",
    private readonly onSend?: (stanza: Stanza) => void,
  ) {}

  send(stanza: OutgoingStanza): void {
    if (this.failWith !== undefined) throw this.failWith;
    const sent = { from: this.jid, ...stanza };
    this.sent.push(sent);
    this.onSend?.({ ...EMPTY_STANZA, ...sent });
  }

  get address(): string {
    return this.jid;
  }

  onStanza(handler: (stanza: Stanza) => void): void {
    this.handler = handler;
  }

  onMessage(handler: (message: Stanza) => void): void {
    this.handler = handler;
  }

  wireText(message: OutgoingStanza): string {
    return JSON.stringify({ from: this.jid, ...message });
  }

  onOnline(_handler: (reconnected: boolean) => void): void {}

  /**
   * Hands a stanza to the registered `onStanza` handler, as if it had arrived.
   * @returns What the handler returned (a promise, for a handler that is async).
   */
  deliver(stanza: Stanza): unknown {
    return this.handler?.(stanza);
  }

  async close(): Promise<void> {}
}

/** One recorded log line. */
export interface LogLine {
  level: "error" | "warn" | "info" | "debug" | "internal" | "activity";
  msg: string;
  xid: string | undefined;
  service: string;
}

/** A {@link Logger} that keeps every line in `lines` (children share the list). */
export class RecordingLogger implements Logger {
  constructor(
    readonly lines: LogLine[] = [],
    readonly service = "test",
  ) {}
  error(msg: string, xid?: string): void {
    this.lines.push({ level: "error", msg, xid, service: this.service });
  }
  warn(msg: string, xid?: string): void {
    this.lines.push({ level: "warn", msg, xid, service: this.service });
  }
  info(msg: string, xid?: string): void {
    this.lines.push({ level: "info", msg, xid, service: this.service });
  }
  debug(msg: string, xid?: string): void {
    this.lines.push({ level: "debug", msg, xid, service: this.service });
  }
  internal(msg: string, xid?: string): void {
    this.lines.push({ level: "internal", msg, xid, service: this.service });
  }
  activity(msg: string, xid?: string): void {
    this.lines.push({ level: "activity", msg, xid, service: this.service });
  }
  child(service: string): Logger {
    return new RecordingLogger(this.lines, service);
  }
  reopen(): void {}
  /** The messages logged at `level` (at any level when omitted), oldest first. */
  messages(level?: LogLine["level"]): string[] {
    return this.lines.filter((l) => level === undefined || l.level === level).map((l) => l.msg);
  }
}

/** A call made through a {@link TableClient}. */
export interface RecordedCall {
  service: string;
  method: string;
  params: JsonValue[];
  opts: RequestOptions | undefined;
}

function pendingOf(results: Promise<JsonValue[]>): PendingRequest {
  return {
    collect: () => results,
    first: async () => (await results)[0],
    async *[Symbol.asyncIterator]() {
      yield* await results;
    },
  };
}

/**
 * An {@link OsrfClient} answering stateless requests from `answer`, recording each call.
 * Sessions are not supported.
 */
export class TableClient implements OsrfClient {
  readonly calls: RecordedCall[] = [];

  /** @param answer Results for a call; a throw (or rejection) fails the request. */
  constructor(private readonly answer: (call: RecordedCall) => JsonValue[] | Promise<JsonValue[]> = () => []) {}

  request(service: string, method: string, params: JsonValue[] = [], opts?: RequestOptions): PendingRequest {
    const call = { service, method, params, opts };
    this.calls.push(call);
    const results = Promise.resolve().then(() => this.answer(call));
    results.catch(() => {}); // failures surface when the caller reads them
    return pendingOf(results);
  }

  session(_service: string): ClientSession {
    throw new Error("TableClient does not support sessions");
  }

  async close(): Promise<void> {}
}
