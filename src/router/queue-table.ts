/**
 * The Redis router's table: classes (services), the service queues each is forwarded to,
 * and the listeners registered for each queue. Free of I/O, so the spreading rules can be
 * tested on their own; queue-router.ts does the pushing and the stall checks.
 *
 * On Redis a listener registers from its own address `opensrf:client:<user>:<domain>:…` and
 * reads `opensrf:service:<user>:<domain>:<class>`, so listeners of one account and domain
 * share a queue (Redis hands each message to whichever pops first: they balance by
 * themselves). The router spreads over the distinct queues — one per account and domain —
 * and keeps the listeners of each only to know when the last one has gone.
 */
import type { RouterTable } from "./info-methods.ts";

/** A message pushed to a queue that may still be waiting there. */
export interface PushRecord {
  /** The element as pushed (what an LPOP returns, byte for byte). */
  raw: string;
  /** Clock ms of the push. */
  at: number;
}

/** One service queue of a class, as the router sees it. */
export class QueueTarget {
  /** Addresses of the listeners registered for this queue. */
  readonly instances = new Set<string>();
  /** Messages forwarded to it (the router's info stats). */
  count = 0;
  /**
   * Judged to have no reader: a message waited `stall_timeout` unread. Gets only probes
   * while another queue of the class is healthy; healthy again once a pop is seen or a
   * listener (re-)registers for it.
   */
  stalled = false;
  /**
   * What this router pushed that may still be in the queue, oldest first: after a push
   * whose reply said the list holds n elements, only the last n pushes can still be there.
   */
  pending: PushRecord[] = [];
  /** The list's length after our last push, less what we took since: below it means pops. */
  length = 0;
  /** The pending stall check, if any. */
  timer: unknown;
  /** Warned that a message waited unread with no other queue to move it to (until a pop is seen). */
  idleWarned = false;
  /** While stalled: clock ms when the next probe may go, and the current backoff. */
  probeAt = 0;
  probeBackoffMs = 0;

  constructor(
    readonly className: string,
    /** `opensrf:service:<user>:<domain>:<class>`. */
    readonly queue: string,
  ) {}
}

interface ClassEntry {
  targets: QueueTarget[];
  /** Round-robin cursor. */
  next: number;
}

/** What {@link QueueTable.register} did. */
export type QueueRegisterResult = "new-class" | "new-queue" | "new-instance" | "already-registered";

/** Classes → queues → listeners. */
export class QueueTable implements RouterTable {
  private readonly classes = new Map<string, ClassEntry>();

  /** Adds listener `sender` reading `queue` for `className`. */
  register(className: string, sender: string, queue: string): { result: QueueRegisterResult; target: QueueTarget } {
    let entry = this.classes.get(className);
    const newClass = !entry;
    if (!entry) {
      entry = { targets: [], next: 0 };
      this.classes.set(className, entry);
    }
    let target = entry.targets.find((t) => t.queue === queue);
    const newQueue = !target;
    if (!target) {
      target = new QueueTarget(className, queue);
      entry.targets.push(target);
    }
    if (target.instances.has(sender)) return { result: "already-registered", target };
    target.instances.add(sender);
    return { result: newClass ? "new-class" : newQueue ? "new-queue" : "new-instance", target };
  }

  /**
   * Removes listener `sender` of `className`. Returns its queue and whether that queue lost
   * its last listener (it is then out of the table, and the class too once it has no queue).
   */
  unregister(className: string, sender: string): { target: QueueTarget; queueGone: boolean } | undefined {
    const entry = this.classes.get(className);
    const target = entry?.targets.find((t) => t.instances.has(sender));
    if (!entry || !target) return undefined;
    target.instances.delete(sender);
    if (target.instances.size > 0) return { target, queueGone: false };
    entry.targets = entry.targets.filter((t) => t !== target);
    if (entry.targets.length === 0) this.classes.delete(className);
    return { target, queueGone: true };
  }

  /** The queues of a class, in registration order. */
  targets(className: string): readonly QueueTarget[] {
    return this.classes.get(className)?.targets ?? [];
  }

  /** True while `target` is in the table. */
  has(target: QueueTarget): boolean {
    return this.targets(target.className).includes(target);
  }

  /**
   * Where the next message of `className` goes: round robin over its healthy queues. A
   * stalled queue whose probe is due takes this one message instead (so a listener that was
   * only slow is found again; its next probe waits twice as long, up to `maxBackoffMs`).
   * With no healthy queue, round robin over the stalled ones (a listener may come back and
   * Redis keeps what waits for it). Undefined for a class nobody registered.
   */
  pick(className: string, now: number, firstBackoffMs: number, maxBackoffMs: number): QueueTarget | undefined {
    const entry = this.classes.get(className);
    if (!entry || entry.targets.length === 0) return undefined;
    const healthy = entry.targets.filter((t) => !t.stalled);
    if (healthy.length > 0 && healthy.length < entry.targets.length) {
      const probe = entry.targets.find((t) => t.stalled && t.probeAt <= now);
      if (probe) {
        probe.probeBackoffMs = Math.min(
          maxBackoffMs,
          probe.probeBackoffMs > 0 ? probe.probeBackoffMs * 2 : firstBackoffMs,
        );
        probe.probeAt = now + probe.probeBackoffMs;
        return probe;
      }
    }
    const pool = healthy.length > 0 ? healthy : entry.targets;
    return pool[entry.next++ % pool.length]!;
  }

  /** Healthy queues of the same class other than `target`. */
  others(target: QueueTarget): QueueTarget[] {
    return this.targets(target.className).filter((t) => t !== target && !t.stalled);
  }

  classNames(): string[] {
    return [...this.classes.keys()];
  }

  /** `{queue: forwards}` of one class. */
  classStats(className: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.targets(className)) out[t.queue] = t.count;
    return out;
  }

  classTotal(className: string): number {
    let total = 0;
    for (const t of this.targets(className)) total += t.count;
    return total;
  }
}
