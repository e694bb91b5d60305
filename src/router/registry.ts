/**
 * The router's table of classes (services) and their nodes (registered listeners),
 * kept free of I/O so the forwarding rules can be tested on their own.
 */

/** One registered listener of a class. */
export interface RouterNode {
  /** Listener's full JID. */
  jid: string;
  /** Messages forwarded to it so far (the C router's `count`). */
  count: number;
}

interface ClassEntry {
  nodes: Map<string, RouterNode>;
  /** Round-robin cursor into the node order. */
  next: number;
}

/** Outcome of a register call, so the caller knows when to open a class connection. */
export type RegisterResult = "new-class" | "new-node" | "already-registered";

export class Registry {
  private classes = new Map<string, ClassEntry>();

  register(className: string, jid: string): RegisterResult {
    let entry = this.classes.get(className);
    const isNewClass = !entry;
    if (!entry) {
      entry = { nodes: new Map(), next: 0 };
      this.classes.set(className, entry);
    }
    if (entry.nodes.has(jid)) return "already-registered";
    entry.nodes.set(jid, { jid, count: 0 });
    return isNewClass ? "new-class" : "new-node";
  }

  /** Remove a node; returns true when the class became empty and was removed. */
  unregister(className: string, jid: string): boolean {
    const entry = this.classes.get(className);
    if (!entry) return false;
    entry.nodes.delete(jid);
    if (entry.nodes.size > 0) return false;
    this.classes.delete(className);
    return true;
  }

  /** Pick the next node of a class, round-robin, and count the forward. */
  nextNode(className: string): RouterNode | undefined {
    const entry = this.classes.get(className);
    if (!entry || entry.nodes.size === 0) return undefined;
    const nodes = [...entry.nodes.values()];
    const node = nodes[entry.next % nodes.length]!;
    entry.next = (entry.next + 1) % nodes.length;
    node.count++;
    return node;
  }

  hasNode(className: string, jid: string): boolean {
    return this.classes.get(className)?.nodes.has(jid) ?? false;
  }

  nodeCount(className: string): number {
    return this.classes.get(className)?.nodes.size ?? 0;
  }

  classNames(): string[] {
    return [...this.classes.keys()];
  }

  /** Classes a JID is registered in (used when a listener's bare presence goes away). */
  classesOf(jid: string): string[] {
    return this.classNames().filter((c) => this.hasNode(c, jid));
  }

  /** `{nodeJID: count}` for one class; empty object for an unknown class. */
  classStats(className: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const n of this.classes.get(className)?.nodes.values() ?? []) out[n.jid] = n.count;
    return out;
  }

  /** Total forwards to a class. */
  classTotal(className: string): number {
    let total = 0;
    for (const n of this.classes.get(className)?.nodes.values() ?? []) total += n.count;
    return total;
  }
}
