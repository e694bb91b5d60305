/**
 * The listener's counters and per-drone view, fed without touching the pool: a wrapper
 * around its {@link DroneSpawner} sees every spawn, every IPC message in both directions,
 * every kill and every exit; the listener's failure hook reports overloads and hung
 * drones. Everything is plain fields and maps updated in O(1) per event; reports are
 * built only when asked for.
 */
import type { BusKind } from "../bus/types.ts";
import { Histogram, type HistogramSnapshot } from "../metrics/histogram.ts";
import { stateOf } from "../metrics/status.ts";
import {
  type DroneRecord,
  type DroneState,
  EXIT_CAUSES,
  type ExitCause,
  LOST_REASONS,
  type LostReason,
  type PoolReadings,
  RETIRE_CAUSES,
  type RetireCause,
  SPAWN_CAUSES,
  type SpawnCause,
} from "../metrics/types.ts";
import { isStaleReport, type RequestDone } from "./ipc.ts";
import type { DroneEvents, DroneHandle, DroneSpawner, PoolFailure } from "./types.ts";

/**
 * Distinct method names kept as labels; later ones count as {@link OTHER_METHOD}. Callers
 * choose method names (unknown ones get a 404), so the label set must be bounded.
 */
export const MAX_METHOD_LABELS = 500;
/** Label of methods beyond {@link MAX_METHOD_LABELS}. */
export const OTHER_METHOD = "(other)";

/** Counters of one listener, and its live drones. */
export class PoolMetrics implements PoolReadings {
  /** Epoch ms the listener started. */
  readonly startedAt: number;
  spawns = 0;
  readonly spawnCauses = Object.fromEntries(SPAWN_CAUSES.map((c) => [c, 0])) as Record<SpawnCause, number>;
  readonly retires = Object.fromEntries(RETIRE_CAUSES.map((c) => [c, 0])) as Record<RetireCause, number>;
  accepted = 0;
  /** Requests finished, all methods, as reported in `done` (plus those a board counted for drones gone). */
  private reported = 0;
  overloadRejections = 0;
  /** The bus the listener's connection speaks (serve sets it); says which counter {@link online} bumps. */
  bus: BusKind = "xmpp";
  xmppReconnects = 0;
  redisReconnects = 0;
  readonly exits = Object.fromEntries(EXIT_CAUSES.map((c) => [c, 0])) as Record<ExitCause, number>;
  readonly lost = Object.fromEntries(LOST_REASONS.map((r) => [r, 0])) as Record<LostReason, number>;
  /** method → status code → count. */
  readonly byMethod = new Map<string, Map<number, number>>();
  private readonly duration = new Histogram();
  private readonly live = new Set<DroneRecord>();
  private readonly byPid = new Map<number, DroneRecord>();
  /** Live drones on the free-drone board, and what it says of them. */
  private readonly boards = new Map<DroneRecord, BoardView>();
  /**
   * Drones gone whose requests the board counted before their `done` arrived: that many
   * late `done` entries are not counted again.
   */
  private readonly credits = new WeakMap<DroneRecord, number>();

  /**
   * @param service Service name, for the reports.
   * @param now Epoch ms clock (tests).
   */
  constructor(
    readonly service: string,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  /** A spawner that reports to these metrics and otherwise behaves as `inner`. */
  observeSpawner(inner: DroneSpawner): DroneSpawner {
    const out: DroneSpawner = { spawn: (events, cause) => this.spawn(inner, events, cause) };
    if (inner.wantAvailable) out.wantAvailable = (on) => inner.wantAvailable?.(on);
    return out;
  }

  /**
   * Requests finished, all methods: current for drones on a board (it counts each before
   * its reply leaves), whose `done` details arrive later.
   */
  get requests(): number {
    let n = this.reported;
    for (const b of this.boards.values()) n += Math.max(0, servedOf(b) - b.recorded);
    return n;
  }

  /** The listener answered a caller with an error (its pool-failure hook). */
  failure(f: PoolFailure): void {
    switch (f.kind) {
      case "overload":
        this.overloadRejections++;
        return;
      case "timeout": {
        this.lost.timeout++;
        const d = this.byPid.get(f.pid);
        if (d) d.cause = "hung";
        return;
      }
      default:
        this.lost[f.kind]++;
    }
  }

  /** The listener's bus connection came online (`reconnected` false the first time). */
  online(reconnected: boolean): void {
    if (!reconnected) return;
    if (this.bus === "redis") this.redisReconnects++;
    else this.xmppReconnects++;
  }

  /** Live drones, oldest first. */
  drones(): readonly DroneRecord[] {
    this.readBoard();
    return [...this.live];
  }

  /** Drones by state. */
  stateCounts(): Record<DroneState, number> {
    this.readBoard();
    const out: Record<DroneState, number> = { starting: 0, idle: 0, busy: 0, retiring: 0 };
    for (const d of this.live) out[stateOf(d)]++;
    return out;
  }

  /** Drones that finished on the board since their last `available` are idle; their counts are the board's. */
  private readBoard(): void {
    for (const [d, b] of this.boards) {
      const n = b.finished();
      if (d.busy && n !== undefined && n >= b.handed) setIdle(d);
      d.requests = Math.max(d.requests, servedOf(b));
    }
  }

  /** The request duration histogram (seconds). */
  durations(): HistogramSnapshot {
    return this.duration.snapshot();
  }

  private spawn(inner: DroneSpawner, events: DroneEvents, cause: SpawnCause): DroneHandle {
    const d: DroneRecord = {
      pid: 0,
      startedAt: this.now(),
      ready: false,
      busy: false,
      retiring: false,
      requests: 0,
      method: undefined,
      since: undefined,
      rssBytes: undefined,
      cause: undefined,
    };
    // Live before spawn() returns: its events could in principle come first.
    this.live.add(d);
    let handle: DroneHandle;
    try {
      handle = inner.spawn(
        {
          message: (m) => {
            this.onMessage(d, m);
            events.message(m);
          },
          exit: (code, signal) => {
            this.onExit(d, signal);
            events.exit(code, signal);
          },
        },
        cause,
      );
    } catch (e) {
      this.live.delete(d);
      throw e;
    }
    d.pid = handle.pid;
    this.spawns++;
    this.spawnCauses[cause]++;
    if (this.live.has(d)) this.byPid.set(d.pid, d);
    const finished = handle.finished?.bind(handle);
    const served = handle.requestsServed?.bind(handle);
    const board: BoardView | undefined = finished ? { handed: 0, recorded: 0, finished, served } : undefined;
    if (board && this.live.has(d)) this.boards.set(d, board);
    const out: DroneHandle = {
      pid: handle.pid,
      send: (msg) => {
        const ok = handle.send(msg);
        if (ok && msg.type === "request") {
          this.accepted++;
          if (board) board.handed++;
          d.busy = true;
        } else if (msg.type === "shutdown" && !d.retiring) {
          d.retiring = true;
          d.cause ??= "retired";
          this.retires[msg.reason]++;
        }
        return ok;
      },
      kill: (signal) => {
        // Only the pool calls this: a retire, a timeout (then failure() says "hung") or a stop.
        d.retiring = true;
        d.cause ??= "retired";
        handle.kill(signal);
      },
    };
    if (finished) out.finished = finished;
    if (served) out.requestsServed = served;
    return out;
  }

  private onMessage(d: DroneRecord, m: unknown): void {
    if (typeof m !== "object" || m === null) return;
    const msg = m as { type?: unknown; done?: unknown };
    if (msg.done !== undefined) this.recordDone(d, msg.done);
    const fields = m as Record<string, unknown>;
    switch (msg.type) {
      case "ready":
        d.ready = true;
        return;
      case "busy":
        // About a message the board has since shown finished (pool.ts): nothing runs.
        if (this.staleUnit(d, fields.unit)) return;
        if (typeof fields.method === "string") d.method = fields.method;
        if (typeof fields.since === "number") d.since = fields.since;
        return;
      case "waiting":
        d.method = undefined;
        d.since = undefined;
        return;
      case "available":
        if (typeof fields.rssBytes === "number") d.rssBytes = fields.rssBytes;
        if (!this.staleUnit(d, fields.served)) setIdle(d);
        return;
      case "exiting":
        d.retiring = true;
        d.cause = exitingCause(fields.reason) ?? d.cause;
        return;
    }
  }

  private recordDone(d: DroneRecord, done: unknown): void {
    if (!Array.isArray(done)) return;
    for (const r of done as unknown[]) {
      if (!Array.isArray(r)) continue;
      const [method, status, ms] = r as RequestDone;
      if (typeof method !== "string" || typeof status !== "number" || typeof ms !== "number") continue;
      const b = this.boards.get(d);
      if (b) b.recorded++;
      d.requests = b ? Math.max(d.requests, b.recorded) : d.requests + 1;
      const credit = this.credits.get(d) ?? 0;
      if (credit > 0) this.credits.set(d, credit - 1);
      else this.reported++;
      this.duration.observe(ms / 1000);
      let codes = this.byMethod.get(method);
      if (!codes) {
        const key = this.byMethod.size < MAX_METHOD_LABELS ? method : OTHER_METHOD;
        codes = this.byMethod.get(key) ?? new Map<number, number>();
        this.byMethod.set(key, codes);
      }
      codes.set(status, (codes.get(status) ?? 0) + 1);
    }
  }

  /** {@link isStaleReport}, for a drone on the board. */
  private staleUnit(d: DroneRecord, unit: unknown): boolean {
    const b = this.boards.get(d);
    return b !== undefined && isStaleReport(unit, b.handed);
  }

  private onExit(d: DroneRecord, signal: string | null): void {
    const b = this.boards.get(d);
    if (b) {
      // Counted by the board, not (yet) by a `done`: counted now, once.
      const unreported = Math.max(0, servedOf(b) - b.recorded);
      this.reported += unreported;
      if (unreported > 0) this.credits.set(d, unreported);
      this.boards.delete(d);
    }
    if (!this.live.delete(d)) return;
    if (this.byPid.get(d.pid) === d) this.byPid.delete(d.pid);
    this.exits[d.cause ?? (signal !== null ? "killed" : "crash")]++;
  }
}

/** A drone on the free-drone board, as the metrics see it. */
interface BoardView {
  /** Messages handed to it. */
  handed: number;
  /** Its requests counted from `done`. */
  recorded: number;
  finished: () => number | undefined;
  served: (() => number | undefined) | undefined;
}

/** Requests the board says the drone served (what `done` said, without a count there). */
function servedOf(b: BoardView): number {
  return b.served?.() ?? b.recorded;
}

function setIdle(d: DroneRecord): void {
  d.busy = false;
  d.method = undefined;
  d.since = undefined;
}

function exitingCause(reason: unknown): ExitCause | undefined {
  switch (reason) {
    case "max_requests":
    case "memory":
    case "init_failed":
      return reason;
    case "shutdown":
      return "retired";
    default:
      return undefined;
  }
}
