/**
 * Sends the replies of one request the way a C drone does: messages bundled into one
 * `<body>` up to the bundle size, large results cut into partial messages, everything with
 * the request's threadTrace, thread and xid, to the caller's JID.
 */

import type { BusConnection } from "../bus/types.ts";
import type { Logger } from "../log/types.ts";
import { Bundler, splitEncodedResult } from "../protocol/chunking.ts";
import { encodeBody, encodeHeaderPrefix, encodeJson, encodeMessageTail } from "../protocol/codec.ts";
import { complete, type HeaderOptions, makeHeader, methodException, result } from "../protocol/messages.ts";
import type { JsonValue } from "../protocol/types.ts";

// The parts of every reply that depend neither on the request nor on the result, encoded once:
// the 205's tail, and a RESULT's tail around its content (encodeMessageTail's own text, cut
// where the content goes).
const COMPLETE_TAIL = encodeMessageTail(complete(0));
const CONTENT_MARK = "\u0000";
const [RESULT_HEAD, RESULT_END] = encodeMessageTail(result(0, null), "body[0]", CONTENT_MARK).split(CONTENT_MARK) as [
  string,
  string,
];

/** Where replies go. */
export interface ReplyTarget {
  /** The caller's JID (`router_from` when the router forwarded the request, else `from`). */
  to: string;
  thread: string;
  xid: string;
}

/** Sizes from the service settings. */
export interface ReplyLimits {
  maxBundleSize: number;
  maxChunkSize: number;
}

/**
 * Replies of one request. Results are queued into the bundle and flushed on the next turn
 * of the event loop, so results produced without waiting share a message (as the STATUS
 * that ends them does), while a handler that waits between results still streams them.
 */
export class ReplyWriter {
  private readonly bundler: Bundler;
  private pendingFlush: ReturnType<typeof setImmediate> | undefined;
  private finished = false;
  /** While set, queued results wait for the caller's next step instead of a scheduled flush. */
  private holding = false;
  /** See {@link headerPrefix}. */
  private prefix: string | undefined;
  /** The first send failure, if any (e.g. a stanza over the server's size limit). */
  sendError: Error | undefined;

  constructor(
    private readonly transport: BusConnection,
    private readonly target: ReplyTarget,
    private readonly threadTrace: number,
    private readonly header: HeaderOptions,
    private readonly limits: ReplyLimits,
    private readonly log: Logger,
    /** Runs once, just before the final STATUS is queued (so before it can be sent). */
    private readonly onFinal?: () => void,
  ) {
    this.bundler = new Bundler(limits.maxBundleSize);
  }

  /** The encoded header every reply of this request starts with, made on first use. */
  private headerPrefix(): string {
    this.prefix ??= encodeHeaderPrefix(makeHeader(this.threadTrace, this.header));
    return this.prefix;
  }

  /**
   * Results queued from now on are not flushed on the next turn of the event loop, but with
   * whatever follows them: for the synchronous part of a handler, after which the request
   * either ends at once (its 205 then shares their body) or calls {@link release}. Saves
   * scheduling and cancelling a flush for every request that is answered without waiting.
   */
  hold(): void {
    this.holding = true;
  }

  /** Ends {@link hold}: what was queued meanwhile is flushed on the next turn, as usual. */
  release(): void {
    this.holding = false;
    this.scheduleFlush();
  }

  /** True once `complete` or `exception` was sent: nothing more may follow. */
  get done(): boolean {
    return this.finished;
  }

  /**
   * Queues one RESULT. A result larger than the chunk size goes out at once as partial
   * messages, each in its own body, after whatever was bundled before it.
   */
  result(content: JsonValue): void {
    if (this.finished) return;
    // Encoded once: to measure it against the chunk size, and as the RESULT's content.
    const json = encodeJson(content);
    const partials = splitEncodedResult(this.threadTrace, json, this.header, this.limits.maxChunkSize);
    if (partials === null) {
      this.queue(this.headerPrefix() + RESULT_HEAD + json + RESULT_END);
      return;
    }
    this.flushNow();
    for (const msg of partials) this.send(encodeBody([msg]));
  }

  /** Ends the request: STATUS osrfConnectStatus 205 "Request Complete", then flushes. */
  complete(): void {
    if (this.finished) return;
    this.onFinal?.();
    this.queue(this.headerPrefix() + COMPLETE_TAIL);
    this.finish();
  }

  /**
   * Ends the request with STATUS osrfMethodException (no 205 follows, as in C). Results
   * queued before it are sent first, in the same body when they fit.
   */
  exception(code: number, text: string): void {
    if (this.finished) return;
    this.onFinal?.();
    this.queue(this.headerPrefix() + encodeMessageTail(methodException(0, code, text)));
    this.finish();
  }

  private finish(): void {
    this.finished = true;
    this.flushNow();
  }

  /** Queues one encoded message (a header prefix and a tail). */
  private queue(json: string): void {
    const ready = this.bundler.addEncoded(json);
    for (let i = 0; i < ready.length; i++) this.send(ready[i] as string);
    if (!this.holding) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.bundler.count > 0 && this.pendingFlush === undefined && !this.finished) {
      this.pendingFlush = setImmediate(() => {
        this.pendingFlush = undefined;
        this.flushNow();
      });
    }
  }

  private flushNow(): void {
    if (this.pendingFlush !== undefined) {
      clearImmediate(this.pendingFlush);
      this.pendingFlush = undefined;
    }
    const body = this.bundler.flush();
    if (body !== null) this.send(body);
  }

  private send(body: string): void {
    try {
      this.transport.send({ to: this.target.to, thread: this.target.thread, xid: this.target.xid, body });
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.sendError ??= err;
      this.log.error(
        `Unable to send reply for thread ${this.target.thread} trace ${this.threadTrace} to ${this.target.to}: ${err.message}`,
        this.target.xid,
      );
    }
  }
}
