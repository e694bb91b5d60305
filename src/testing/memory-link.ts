/**
 * Two {@link MemoryTransport}s joined back to back, standing in for the XMPP server between
 * a caller and a service: what one side sends arrives at the other, in order, a moment
 * later (never inside the sender's own `send` call, as over a real connection).
 */
import type { BusMessage } from "../bus/types.ts";
import { MemoryTransport } from "./doubles.ts";

/** A caller's transport and a service's, each delivering to the other. */
export class MemoryLink {
  /** The caller's end (`_<host>` resource, like srfsh). */
  readonly caller: MemoryTransport;
  /** The service's end (a drone's resource). */
  readonly service: MemoryTransport;
  private readonly inFlight = { caller: new Set<Promise<unknown>>(), service: new Set<Promise<unknown>>() };

  constructor(service: string, domain = "localhost") {
    this.caller = new MemoryTransport(`opensrf@${domain}/_testing_caller`, domain, (s) => this.carry(s, "service"));
    this.service = new MemoryTransport(`opensrf@${domain}/${service}_drone_testing`, domain, (s) =>
      this.carry(s, "caller"),
    );
  }

  /**
   * Resolves once nothing is on its way to `end` and the handler of every stanza delivered
   * there has settled (for the service end: each stanza has been answered).
   */
  async settled(end: "caller" | "service"): Promise<void> {
    const set = this.inFlight[end];
    while (set.size > 0) await Promise.allSettled([...set]);
  }

  private carry(stanza: BusMessage, end: "caller" | "service"): void {
    const set = this.inFlight[end];
    const p: Promise<unknown> = Promise.resolve()
      .then(() => this[end].deliver(stanza))
      .finally(() => set.delete(p));
    set.add(p);
  }
}
