/**
 * Where a bus connection's incoming messages go, so none is lost before anyone listens.
 *
 * A connection is online (and the server routes to it) before its owner has installed a
 * message handler: the owner learns of the login from a resolved promise, one microtask
 * later, while the stanza that follows the login's last reply may sit in the same socket read
 * and be parsed first. The router's class connections hit exactly that: a caller's request
 * sent as the class came back arrived before the handler and was dropped, unanswered.
 */
import type { Logger } from "../log/types.ts";

/** Messages held for the first handler at most; beyond it they are logged and dropped. */
export const EARLY_MESSAGE_LIMIT = 10_000;

/** Hands each message to the handler, or holds it until there is one. */
export class MessageInlet<M extends { xid?: string }> {
  private handler: ((m: M) => void) | undefined;
  private early: M[] = [];

  /** @param where Names the connection in log lines (its address). */
  constructor(
    private readonly logger: Logger,
    private readonly where: () => string,
  ) {}

  /** Installs the handler and hands it, in order, what arrived before it. */
  set(handler: (m: M) => void): void {
    this.handler = handler;
    for (const m of this.early.splice(0)) this.deliver(m);
  }

  /** Delivers one message; a handler that throws is logged, and the connection goes on. */
  deliver(m: M): void {
    if (!this.handler) {
      if (this.early.length < EARLY_MESSAGE_LIMIT) this.early.push(m);
      else
        this.logger.warn(
          `dropping a message on ${this.where()}: no handler yet and ${EARLY_MESSAGE_LIMIT} held`,
          m.xid,
        );
      return;
    }
    try {
      this.handler(m);
    } catch (e) {
      // A handler bug must not tear down the connection.
      this.logger.error(`message handler failed on ${this.where()}: ${(e as Error).stack ?? e}`, m.xid);
    }
  }
}
