/**
 * In-memory stand-ins for the host's dependencies, so a service (or the host itself) can
 * be exercised without an XMPP server: a transport that records what is sent, a logger
 * that records lines, and a client that answers from a table.
 */
import { completeBusMessage } from "../bus/message.ts";
import type { BusAddresses, BusConnection, BusMessage, OutgoingBusMessage } from "../bus/types.ts";
import type { ClientSession, OsrfClient, PendingRequest, RequestOptions } from "../client/types.ts";
import type { Logger } from "../log/types.ts";
import type { JsonValue } from "../protocol/types.ts";
import { xmppAddresses } from "../xmpp/addresses.ts";

/**
 * A {@link BusConnection} (with XMPP addresses) that keeps every sent message in `sent`, and
 * optionally passes each one on (`onSend`), e.g. to another MemoryTransport's `deliver`.
 */
export class MemoryTransport implements BusConnection {
  readonly kind = "xmpp" as const;
  readonly addresses: BusAddresses = xmppAddresses;
  readonly sent: OutgoingBusMessage[] = [];
  private handler: ((s: BusMessage) => unknown) | undefined;
  /** When set, `send` throws it (e.g. to imitate a stanza over the size limit). */
  failWith: Error | undefined;

  /**
   * @param address Our own address (an XMPP JID by default).
   * @param onSend Called with each sent message as it would arrive (every field filled in,
   *   `from` our address), after it is recorded.
   */
  constructor(
    readonly address = "opensrf@localhost/test_drone",
    readonly domain = "localhost",
    private readonly onSend?: (message: BusMessage) => void,
  ) {}

  /** {@link address} under its XMPP name (tests written before the bus interface use it). */
  get jid(): string {
    return this.address;
  }

  send(message: OutgoingBusMessage): void {
    if (this.failWith !== undefined) throw this.failWith;
    const sent = { from: this.address, ...message };
    this.sent.push(sent);
    this.onSend?.(completeBusMessage(message, this.address));
  }

  onMessage(handler: (message: BusMessage) => void): void {
    this.handler = handler;
  }

  wireText(message: OutgoingBusMessage): string {
    return JSON.stringify({ from: this.address, ...message });
  }

  onOnline(_handler: (reconnected: boolean) => void): void {}

  /**
   * Hands a message to the registered `onMessage` handler, as if it had arrived.
   * @returns What the handler returned (a promise, for a handler that is async).
   */
  deliver(message: BusMessage): unknown {
    return this.handler?.(message);
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
