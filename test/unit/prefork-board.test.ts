/**
 * The free-drone board between two real processes: slots, counters, the "wanted" flag,
 * and the store→load ordering the hand-off relies on (board.ts).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BOARD_BYTES, BOARD_SLOTS, DroneBoard, ListenerBoard } from "../../src/prefork/board.ts";
import { BoardError } from "../../src/prefork/errors.ts";

const LITMUS = resolve(import.meta.dir, "../fixtures/board/litmus-drone.ts");
const boards: ListenerBoard[] = [];
const dirs: string[] = [];

function newBoard(): ListenerBoard {
  const dir = mkdtempSync(join(tmpdir(), "board-test-"));
  dirs.push(dir);
  const b = ListenerBoard.create(dir);
  boards.push(b);
  return b;
}

afterEach(() => {
  for (const b of boards.splice(0)) b.remove();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("free-drone board", () => {
  test("a drone's counter and the listener's flag cross between the two mappings", () => {
    const listener = newBoard();
    const slot = listener.take()!;
    const drone = new DroneBoard({ path: listener.path, slot });
    expect(listener.finished(slot)).toBe(0);
    expect(drone.finish(1)).toBe(false);
    expect(listener.finished(slot)).toBe(1);
    listener.want(true);
    expect(drone.finish(2)).toBe(true);
    listener.want(false);
    expect(drone.finish(3)).toBe(false);
    expect(listener.finished(slot)).toBe(3);
    expect(listener.requests(slot)).toBe(0);
    drone.countRequest();
    drone.countRequest();
    expect(listener.requests(slot)).toBe(2);
    expect(listener.finished(slot)).toBe(3);
  });

  test("a slot given back is handed out again with its counter at 0; slots run out, then none", () => {
    const listener = newBoard();
    const slot = listener.take()!;
    const drone = new DroneBoard({ path: listener.path, slot });
    drone.finish(7);
    drone.countRequest();
    listener.give(slot);
    const again = listener.take()!;
    expect(again).toBe(slot);
    expect(listener.finished(again)).toBe(0);
    expect(listener.requests(again)).toBe(0);
    const taken = new Set([again]);
    for (let s = listener.take(); s !== undefined; s = listener.take()) taken.add(s);
    expect(taken.size).toBe(BOARD_SLOTS);
  });

  test("the file lives in a private directory and goes with remove()", () => {
    const listener = newBoard();
    expect(existsSync(listener.path)).toBe(true);
    listener.remove();
    expect(existsSync(listener.path)).toBe(false);
  });

  test("boards of listeners that are gone are removed when a new one is made; a live listener's stays", async () => {
    const parent = mkdtempSync(join(tmpdir(), "board-test-"));
    dirs.push(parent);
    const gone = Bun.spawn({ cmd: ["true"] });
    await gone.exited;
    const orphan = join(parent, `osrf-prefork-board-${gone.pid}-abc`);
    const live = join(parent, `osrf-prefork-board-${process.pid}-def`);
    const other = join(parent, "unrelated");
    for (const d of [orphan, live, other]) mkdirSync(d);
    boards.push(ListenerBoard.create(parent));
    expect([existsSync(orphan), existsSync(live), existsSync(other)]).toEqual([false, true, true]);
  });

  test("a slot out of range or a file too small is a BoardError naming the file", () => {
    const listener = newBoard();
    expect(() => new DroneBoard({ path: listener.path, slot: BOARD_SLOTS })).toThrow(BoardError);
    const small = join(dirs[0]!, "small");
    writeFileSync(small, new Uint8Array(16));
    let err: unknown;
    try {
      new DroneBoard({ path: small, slot: 0 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BoardError);
    expect((err as BoardError).context.path).toBe(small);
  });

  test("store→load litmus across processes: in no round do both the drone miss the flag and the listener miss the counter", async () => {
    const listener = newBoard();
    const slot = listener.take()!;
    expect(slot).toBe(0); // the fixture maps slot 0
    const bytes = Bun.mmap(listener.path, { shared: true });
    const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
    // The last slot's two words, as the fixture uses them.
    const GO = BOARD_BYTES / 4 - 3;
    const ANSWER = BOARD_BYTES / 4 - 2;
    const rounds = 2000;
    const child = Bun.spawn({ cmd: [process.execPath, LITMUS, listener.path, String(rounds)], stderr: "inherit" });
    let bothMissed = 0;
    for (let r = 1; r <= rounds; r++) {
      listener.want(false);
      Atomics.store(words, GO, r);
      // Raced against the drone's finish(r): flag up, then read its counter.
      listener.want(true);
      const sawCounter = listener.finished(slot) >= r;
      let answer = Atomics.load(words, ANSWER);
      while (answer >> 1 !== r) {
        if (child.exitCode !== null) throw new Error(`litmus drone exited with ${child.exitCode} in round ${r}`);
        await Bun.sleep(0);
        answer = Atomics.load(words, ANSWER);
      }
      const sawFlag = (answer & 1) === 1;
      if (!sawCounter && !sawFlag) bothMissed++;
    }
    await child.exited;
    expect(bothMissed).toBe(0);
  }, 60_000);
});
