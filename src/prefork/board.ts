/**
 * The free-drone board: a small file in a private directory that the listener and each of
 * its drones map shared. It replaces the drone's `available` IPC message on the common
 * path, so the listener no longer wakes up once per request for it (C's listener likewise
 * reads its children's status only when it places a request).
 *
 * Layout: 32-bit words. Word 0 is the "wanted" flag, written by the listener only: set
 * while it waits for a drone to come free (a backlog, a drain, a rolled drone still busy).
 * Then two words per slot, written by that slot's drone only: "finished", how many of the
 * listener's messages it has finished (its replies flushed before the store), and
 * "requests", how many requests it has served (session ones included), so that the
 * listener's counts are current although the drone reports the details only now and then.
 *
 * The hand-off is Dekker's: the drone stores its counter, then loads the flag (and sends
 * `available` over IPC if it is set); the listener stores the flag, then loads the
 * counters. Both use sequentially consistent `Atomics` operations (a full fence on x86 and
 * ARM), so at least one of the two sees the other's store and no finished drone is
 * overlooked. The pool re-reads the board on a short timer while the flag is set as well:
 * a lost wake-up could then only delay a request, never lose it.
 */
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BoardError } from "./errors.ts";

/** Where a drone finds its slot (part of its `init` message). */
export interface BoardSlotRef {
  /** Absolute path of the board file. */
  path: string;
  /** The drone's slot, 0-based. */
  slot: number;
}

/** Size of a board file: one page. */
export const BOARD_BYTES = 4096;
/** 32-bit words per slot: finished, requests. */
const SLOT_WORDS = 2;
/** Slots in a board (the page less the flag); drones beyond them run without one (they report by IPC). */
export const BOARD_SLOTS = Math.floor((BOARD_BYTES / 4 - 1) / SLOT_WORDS);
const WANTED = 0;
const finishedWord = (slot: number) => 1 + SLOT_WORDS * slot;
const requestsWord = (slot: number) => 2 + SLOT_WORDS * slot;

/** Maps a board file shared. @throws BoardError when it cannot be mapped or is too small. */
function mapWords(path: string): Int32Array {
  let bytes: Uint8Array;
  try {
    bytes = Bun.mmap(path, { shared: true });
  } catch (e) {
    throw new BoardError(`cannot map the free-drone board: ${(e as Error).message}`, { path });
  }
  if (bytes.byteLength < BOARD_BYTES) {
    throw new BoardError(`the free-drone board is ${bytes.byteLength} bytes, not ${BOARD_BYTES}`, { path });
  }
  return new Int32Array(bytes.buffer, bytes.byteOffset, BOARD_BYTES / 4);
}

/** The board as the listener sees it: owns the file, hands out slots, sets the flag. */
export class ListenerBoard {
  private readonly words: Int32Array;
  private readonly free: number[] = [];
  private removed = false;

  private constructor(
    /** The board file. */
    readonly path: string,
    private readonly dir: string,
  ) {
    this.words = mapWords(path);
    for (let s = BOARD_SLOTS - 1; s >= 0; s--) this.free.push(s);
  }

  /**
   * Creates a board in a new private directory (mode 0700) under `parent`: /dev/shm when
   * there is one (never written back to a disk), else the system's temporary directory.
   * Boards left there by listeners that no longer run (killed with SIGKILL) are removed.
   * @throws BoardError when the file cannot be made or mapped.
   */
  static create(parent = defaultParent()): ListenerBoard {
    let dir: string;
    try {
      removeOrphans(parent);
      dir = mkdtempSync(join(parent, `${DIR_PREFIX}${process.pid}-`));
      const path = join(dir, "board");
      const fd = openSync(path, "wx", 0o600);
      try {
        writeSync(fd, new Uint8Array(BOARD_BYTES));
      } finally {
        closeSync(fd);
      }
      return new ListenerBoard(path, dir);
    } catch (e) {
      if (e instanceof BoardError) throw e;
      throw new BoardError(`cannot create the free-drone board: ${(e as Error).message}`, { path: parent });
    }
  }

  /** A slot for a new drone, its counter at 0; undefined when all are taken. */
  take(): number | undefined {
    const slot = this.free.pop();
    if (slot !== undefined) {
      Atomics.store(this.words, finishedWord(slot), 0);
      Atomics.store(this.words, requestsWord(slot), 0);
    }
    return slot;
  }

  /** Gives back the slot of a drone that has exited (never of a live one: it may still write). */
  give(slot: number): void {
    this.free.push(slot);
  }

  /** Messages the drone in `slot` has finished. */
  finished(slot: number): number {
    return Atomics.load(this.words, finishedWord(slot));
  }

  /** Requests the drone in `slot` has served. */
  requests(slot: number): number {
    return Atomics.load(this.words, requestsWord(slot));
  }

  /** Sets or clears the "wanted" flag. The caller re-reads the counters after setting it. */
  want(on: boolean): void {
    Atomics.store(this.words, WANTED, on ? 1 : 0);
  }

  /** Removes the file and its directory (the mapping stays valid until the process ends). */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A drone's view of the board: its own counter, and the listener's flag. */
export class DroneBoard {
  private readonly words: Int32Array;
  private readonly slot: number;
  private served = 0;

  /** @throws BoardError when the board cannot be mapped or the slot is out of range. */
  constructor(ref: BoardSlotRef) {
    if (!Number.isInteger(ref.slot) || ref.slot < 0 || ref.slot >= BOARD_SLOTS) {
      throw new BoardError(`free-drone board slot ${ref.slot} is out of range`, { path: ref.path });
    }
    this.words = mapWords(ref.path);
    this.slot = ref.slot;
  }

  /** Counts one more request served; before its reply leaves, so a count read after the reply includes it. */
  countRequest(): void {
    Atomics.store(this.words, requestsWord(this.slot), ++this.served);
  }

  /**
   * Publishes that `served` messages are finished; returns whether the listener wants an
   * `available` message as well. The store comes before the load (see the file comment).
   */
  finish(served: number): boolean {
    Atomics.store(this.words, finishedWord(this.slot), served);
    return Atomics.load(this.words, WANTED) !== 0;
  }
}

/** Board directories are named `<prefix><listener pid>-<random>`. */
const DIR_PREFIX = "osrf-prefork-board-";

/** Removes the board directories under `parent` whose listener is gone; never fails. */
function removeOrphans(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!m || processExists(Number(m[1]))) continue;
    try {
      rmSync(join(parent, name), { recursive: true, force: true });
    } catch {
      // Another user's, or going away anyway.
    }
  }
}

/** Whether a process with this pid exists (ours or another user's). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function defaultParent(): string {
  try {
    if (statSync("/dev/shm").isDirectory()) return "/dev/shm";
  } catch {
    // No /dev/shm: the temporary directory will do.
  }
  return tmpdir();
}
