import { describe, expect, test } from "bun:test";
import { LARGE_MESSAGE_CHARS, LargeMessageRelease, RELEASE_AFTER_MS } from "../../src/prefork/large-messages.ts";
import { ManualClock } from "../../src/testing/manual-clock.ts";

function rig() {
  const clock = new ManualClock();
  let released = 0;
  const r = new LargeMessageRelease({ clock, release: () => released++ });
  return { clock, r, released: () => released };
}

describe("LargeMessageRelease", () => {
  test("ordinary messages never release memory", () => {
    const { clock, r, released } = rig();
    for (let i = 0; i < 1000; i++) {
      r.note(LARGE_MESSAGE_CHARS - 1);
      clock.advance(10);
    }
    clock.advance(RELEASE_AFTER_MS * 10);
    expect(released()).toBe(0);
    expect(clock.pending).toBe(0);
  });

  test("a large message releases once, RELEASE_AFTER_MS later", () => {
    const { clock, r, released } = rig();
    r.note(LARGE_MESSAGE_CHARS);
    clock.advance(RELEASE_AFTER_MS - 1);
    expect(released()).toBe(0);
    clock.advance(1);
    expect(released()).toBe(1);
    clock.advance(RELEASE_AFTER_MS * 10);
    expect(released()).toBe(1);
  });

  test("a burst of large messages releases once, after the last of them", () => {
    const { clock, r, released } = rig();
    for (let i = 0; i < 10; i++) {
      r.note(LARGE_MESSAGE_CHARS * 4);
      clock.advance(RELEASE_AFTER_MS / 2);
    }
    expect(released()).toBe(0);
    clock.advance(RELEASE_AFTER_MS / 2);
    expect(released()).toBe(1);
    expect(clock.pending).toBe(0);
  });

  test("stop() drops a pending release", () => {
    const { clock, r, released } = rig();
    r.note(LARGE_MESSAGE_CHARS);
    r.stop();
    clock.advance(RELEASE_AFTER_MS * 2);
    expect(released()).toBe(0);
    expect(clock.pending).toBe(0);
  });
});
