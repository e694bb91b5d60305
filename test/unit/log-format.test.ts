import { describe, expect, test } from "bun:test";
import {
  formatJsonLine,
  formatOsrfBody,
  formatOsrfLine,
  formatOsrfTimestamp,
  LEVEL_LABELS,
  type LogRecord,
  OSRF_LINE_PATTERN,
} from "../../src/log/format.ts";

// 2025-03-04 05:06:07.890 local time: the format uses local time, as C's localtime().
const TIME = new Date(2025, 2, 4, 5, 6, 7, 890).getTime();

function record(over: Partial<LogRecord> = {}): LogRecord {
  return {
    level: "info",
    service: "opensrf.math",
    pid: 4242,
    file: "drone",
    line: 0,
    xid: "17400000004242",
    msg: "hello world",
    time: TIME,
    ...over,
  };
}

describe("OpenSRF line format", () => {
  test("a file line, exactly", () => {
    expect(formatOsrfLine(record())).toBe(
      "opensrf.math 2025-03-04 05:06:07 [INFO:4242:drone:0:17400000004242] hello world",
    );
  });

  test("C's level labels, padded to four characters except ACT", () => {
    expect(LEVEL_LABELS).toEqual({
      error: "ERR ",
      warn: "WARN",
      info: "INFO",
      debug: "DEBG",
      internal: "INT ",
      activity: "ACT",
    });
    expect(formatOsrfBody(record({ level: "error", xid: "" }))).toBe("[ERR :4242:drone:0:] hello world");
    expect(formatOsrfBody(record({ level: "activity" }))).toBe("[ACT:4242:drone:0:17400000004242] hello world");
  });

  test("every level matches the line pattern and parses back", () => {
    for (const level of Object.keys(LEVEL_LABELS) as LogRecord["level"][]) {
      const m = OSRF_LINE_PATTERN.exec(formatOsrfLine(record({ level, xid: level === "warn" ? "" : "x1" })));
      expect(m).not.toBeNull();
      expect(m?.[1]).toBe("opensrf.math");
      expect(m?.[3]).toBe(LEVEL_LABELS[level]);
      expect(m?.[4]).toBe("4242");
      expect(m?.[8]).toBe("hello world");
    }
  });

  test("timestamps are zero-padded and follow the clock", () => {
    expect(formatOsrfTimestamp(TIME)).toBe("2025-03-04 05:06:07");
    expect(formatOsrfTimestamp(TIME + 1000)).toBe("2025-03-04 05:06:08");
    expect(formatOsrfTimestamp(new Date(2024, 11, 31, 23, 59, 59).getTime())).toBe("2024-12-31 23:59:59");
    expect(formatOsrfTimestamp(TIME)).toBe("2025-03-04 05:06:07");
  });
});

describe("JSON line format", () => {
  test("fields", () => {
    const line = formatJsonLine(record({ msg: 'say "hi"\nbye' }));
    expect(line).not.toContain("\n");
    expect(JSON.parse(line)).toEqual({
      ts: new Date(TIME).toISOString(),
      level: "info",
      service: "opensrf.math",
      pid: 4242,
      xid: "17400000004242",
      file: "drone",
      msg: 'say "hi"\nbye',
    });
  });
});
