/**
 * The last messages forwarded to each node, so the router can resend what a bodiless bounce stands
 * for to another node of the class.
 */
import type { OutgoingBusMessage } from "../bus/types.ts";

/** How many recent forwards per node are kept for bounce recovery. */
const KEEP_PER_NODE = 64;
/** Forget nodes not forwarded to for this long. */
const FORGET_AFTER_MS = 60_000;

interface NodeLog {
  sent: OutgoingBusMessage[];
  /** Bodiless bounces received from this node so far. */
  bounced: number;
  last: number;
}

/**
 * Recovers the messages behind bodiless bounces. The XMPP server delivers to a node in
 * order and bounces everything sent after its session ended, so k bounces from a node
 * stand for the last k messages forwarded to it: the i-th bounce recovers the i-th
 * most recent one. The set recovered is exact; only the resend order is reversed.
 */
export class RecentForwards {
  private nodes = new Map<string, NodeLog>();

  record(s: OutgoingBusMessage): void {
    const now = Date.now();
    let log = this.nodes.get(s.to);
    if (!log) {
      log = { sent: [], bounced: 0, last: now };
      this.nodes.set(s.to, log);
      this.prune(now);
    }
    log.last = now;
    log.bounced = 0;
    log.sent.push(s);
    if (log.sent.length > KEEP_PER_NODE) log.sent.shift();
  }

  /** True if something was forwarded to `node` recently (a bounce from it can be genuine). */
  hasForwardedTo(node: string): boolean {
    return this.nodes.has(node);
  }

  /** The message a bodiless bounce from `node` stands for, if still known. */
  recover(node: string): OutgoingBusMessage | undefined {
    const log = this.nodes.get(node);
    if (!log || log.bounced >= log.sent.length) return undefined;
    log.bounced++;
    return log.sent[log.sent.length - log.bounced];
  }

  private prune(now: number): void {
    for (const [jid, log] of this.nodes) if (now - log.last > FORGET_AFTER_MS) this.nodes.delete(jid);
  }
}
