import { describe, expect, test } from "bun:test";
import { EARLY_MESSAGE_LIMIT, MessageInlet } from "../../src/bus/inlet.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";

type M = { xid: string; n: number };
const msg = (n: number): M => ({ xid: `x${n}`, n });

describe("MessageInlet", () => {
  test("messages that arrive before the handler are handed to it, in order, when it is set", () => {
    const inlet = new MessageInlet<M>(new RecordingLogger(), () => "conn");
    inlet.deliver(msg(1));
    inlet.deliver(msg(2));
    const got: number[] = [];
    inlet.set((m) => got.push(m.n));
    expect(got).toEqual([1, 2]);
    inlet.deliver(msg(3));
    expect(got).toEqual([1, 2, 3]);
  });

  test("a later handler replaces the first and gets only what comes after", () => {
    const inlet = new MessageInlet<M>(new RecordingLogger(), () => "conn");
    const first: number[] = [];
    const second: number[] = [];
    inlet.deliver(msg(1));
    inlet.set((m) => first.push(m.n));
    inlet.set((m) => second.push(m.n));
    inlet.deliver(msg(2));
    expect(first).toEqual([1]);
    expect(second).toEqual([2]);
  });

  test("a handler that throws is logged with the message's xid; the next message still arrives", () => {
    const log = new RecordingLogger();
    const inlet = new MessageInlet<M>(log, () => "opensrf@localhost/x");
    const got: number[] = [];
    inlet.set((m) => {
      if (m.n === 1) throw new Error("boom");
      got.push(m.n);
    });
    inlet.deliver(msg(1));
    inlet.deliver(msg(2));
    expect(got).toEqual([2]);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatchObject({ level: "error", xid: "x1" });
    expect(log.lines[0]!.msg).toContain("message handler failed on opensrf@localhost/x: Error: boom");
  });

  test("held messages are bounded: beyond the limit each is logged, not kept", () => {
    const log = new RecordingLogger();
    const inlet = new MessageInlet<M>(log, () => "conn");
    for (let i = 0; i < EARLY_MESSAGE_LIMIT + 2; i++) inlet.deliver(msg(i));
    expect(log.lines.map((l) => l.level)).toEqual(["warn", "warn"]);
    expect(log.lines[0]!.msg).toBe(`dropping a message on conn: no handler yet and ${EARLY_MESSAGE_LIMIT} held`);
    let n = 0;
    inlet.set(() => n++);
    expect(n).toBe(EARLY_MESSAGE_LIMIT);
  });
});
