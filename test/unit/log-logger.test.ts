import { dlopen, FFIType, ptr } from "bun:ffi";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readCoreConfigFromString } from "../../src/config/core.ts";
import { OSRF_LINE_PATTERN } from "../../src/log/format.ts";
import { createLogger, type LoggerOptions } from "../../src/log/logger.ts";
import { formatCall } from "../../src/log/redact.ts";

const DIR = mkdtempSync(join(tmpdir(), "osrf-log-test-"));
const LOGGER_MODULE = resolve(import.meta.dir, "../../src/log/logger.ts");
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

let fileNo = 0;
function tempFile(): string {
  return join(DIR, `log-${++fileNo}.log`);
}

function lines(file: string): string[] {
  return readFileSync(file, "utf8").split("\n").filter(Boolean);
}

/** Logs one line at every level (and an activity line) with the given settings. */
function logAll(options: Omit<LoggerOptions, "logfile"> & { logfile?: string }): string[] {
  const file = options.logfile ?? tempFile();
  const log = createLogger({ ...options, logfile: file });
  log.error("e", "x1");
  log.warn("w", "x1");
  log.info("i", "x1");
  log.debug("d", "x1");
  log.internal("n", "x1");
  log.activity("a", "x1");
  log.close();
  return lines(file);
}

/** Runs a script in a fresh process and returns its stderr. */
function stderrOf(script: string): string {
  const path = join(DIR, `script-${++fileNo}.ts`);
  writeFileSync(path, `import { createLogger } from ${JSON.stringify(LOGGER_MODULE)};\n${script}\n`);
  const proc = Bun.spawnSync({ cmd: [process.execPath, "run", path], stdout: "pipe", stderr: "pipe" });
  expect(proc.exitCode).toBe(0);
  return proc.stderr.toString();
}

describe("file logging", () => {
  test("lines match the OpenSRF format", () => {
    const file = tempFile();
    const log = createLogger({ service: "opensrf.math", logfile: file, loglevel: 3, component: "drone" });
    log.info("hello", "174012345");
    log.error("bad thing");
    log.close();
    const [info, error] = lines(file);
    const m = OSRF_LINE_PATTERN.exec(info ?? "");
    expect(m?.slice(1)).toEqual([
      "opensrf.math",
      expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
      "INFO",
      String(process.pid),
      "drone",
      "0",
      "174012345",
      "hello",
    ]);
    expect(error).toMatch(/^opensrf\.math \S+ \S+ \[ERR :\d+:drone:0:\] bad thing$/);
  });

  test("the clock is local time, as C's localtime()", () => {
    const file = tempFile();
    const log = createLogger({
      service: "s",
      logfile: file,
      loglevel: 3,
      now: () => new Date(2025, 0, 2, 3, 4, 5).getTime(),
    });
    log.info("t");
    log.close();
    expect(lines(file)[0]).toStartWith("s 2025-01-02 03:04:05 [INFO:");
  });

  test.each([
    [0, []],
    [1, ["ERR "]],
    [2, ["ERR ", "WARN"]],
    [3, ["ERR ", "WARN", "INFO", "ACT"]],
    [4, ["ERR ", "WARN", "INFO", "DEBG", "ACT"]],
    [5, ["ERR ", "WARN", "INFO", "DEBG", "INT ", "ACT"]],
  ])("level %d writes %p", (loglevel, labels) => {
    const got = logAll({ service: "s", loglevel }).map((l) => OSRF_LINE_PATTERN.exec(l)?.[3]);
    expect(got).toEqual(labels);
  });

  test("enabled() follows the level", () => {
    const log = createLogger({ service: "s", logfile: tempFile(), loglevel: 3 });
    expect([1, 2, 3, 4, 5].map((l) => log.enabled(l))).toEqual([true, true, true, false, false]);
    expect(log.level).toBe(3);
    log.close();
  });

  test("appends to an existing file", () => {
    const file = tempFile();
    writeFileSync(file, "old line\n");
    logAll({ service: "s", loglevel: 1, logfile: file });
    expect(lines(file)).toHaveLength(2);
    expect(lines(file)[0]).toBe("old line");
  });

  test("reopen() follows logrotate's rename", () => {
    const file = tempFile();
    const log = createLogger({ service: "s", logfile: file, loglevel: 3 });
    log.info("before");
    renameSync(file, `${file}.1`);
    log.info("still old file");
    log.reopen();
    log.info("after");
    log.close();
    expect(lines(`${file}.1`).map((l) => l.split("] ")[1])).toEqual(["before", "still old file"]);
    expect(lines(file).map((l) => l.split("] ")[1])).toEqual(["after"]);
  });

  test("child() and withComponent() share the sink", () => {
    const file = tempFile();
    const log = createLogger({ service: "listener", logfile: file, loglevel: 3, logtag: "inst1" });
    log.child("opensrf.math").info("from child");
    log.withComponent("pool").warn("from pool");
    log.info("from parent");
    log.child("other").reopen();
    log.info("after reopen via child");
    log.close();
    const parsed = lines(file).map((l) => OSRF_LINE_PATTERN.exec(l));
    expect(parsed.map((m) => m?.[1])).toEqual([
      "opensrf.math/inst1",
      "listener/inst1",
      "listener/inst1",
      "listener/inst1",
    ]);
    expect(parsed.map((m) => m?.[5])).toEqual(["osrf-prefork", "pool", "osrf-prefork", "osrf-prefork"]);
  });

  test("close() stops writing", () => {
    const file = tempFile();
    const log = createLogger({ service: "s", logfile: file, loglevel: 3 });
    log.info("one");
    log.close();
    log.info("two");
    expect(lines(file)).toHaveLength(1);
  });

  test("JSON format", () => {
    const file = tempFile();
    const log = createLogger({ service: "s", logfile: file, loglevel: 3, format: "json", component: "router" });
    log.activity(formatCall("opensrf.math", "add", [1, 2], []), "x9");
    log.close();
    const obj = JSON.parse(lines(file)[0] ?? "");
    expect(obj).toMatchObject({
      level: "activity",
      service: "s",
      pid: process.pid,
      xid: "x9",
      file: "router",
      msg: "CALL: opensrf.math add 1,2",
    });
    expect(Number.isNaN(Date.parse(obj.ts))).toBe(false);
  });
});

describe("passwords never reach a log line", () => {
  const PASS = "c0rrect-h0rse";
  const ROUTER_PASS = "b4ttery-st4ple";
  const core = readCoreConfigFromString(
    readFileSync(join(import.meta.dir, "../fixtures/config/opensrf_core.xml"), "utf8")
      .replace("<passwd>password</passwd>", `<passwd>${PASS}</passwd>`)
      .replaceAll("<password>password</password>", `<password>${ROUTER_PASS}</password>`),
  );

  const attempts = (log: ReturnType<typeof createLogger>): void => {
    log.info(`config: ${JSON.stringify(core)}`);
    log.debug(
      `SEND <iq type='set'><query xmlns='jabber:iq:auth'><username>opensrf</username><password>${PASS}</password></query></iq>`,
    );
    log.warn(`connecting to xmpp://router:${ROUTER_PASS}@private.localhost:5222`);
    log.error(`login failed for opensrf with password=${PASS}`);
    log.activity(
      formatCall("open-ils.auth", "open-ils.auth.login", [{ username: "admin", password: PASS }], core.logProtect),
    );
    log.activity(formatCall("opensrf.math", "add", [{ password: PASS }], core.logProtect));
    log.internal(`RECV <body>[{&quot;password&quot;:&quot;${PASS}&quot;}]</body>`);
  };

  test.each(["osrf", "json"] as const)("%s format, with and without the secrets list", (format) => {
    for (const secrets of [[core.opensrf.passwd, ...core.routers.map((r) => r.transport.password)], []]) {
      const file = tempFile();
      const log = createLogger({ service: "s", logfile: file, loglevel: 5, format, secrets });
      attempts(log);
      log.close();
      const text = readFileSync(file, "utf8");
      expect(lines(file)).toHaveLength(7);
      expect(text).not.toContain(PASS);
      expect(text).not.toContain(ROUTER_PASS);
    }
  });

  test("a protected method's params are redacted", () => {
    const file = tempFile();
    const log = createLogger({ service: "s", logfile: file, loglevel: 3 });
    log.activity(
      formatCall("open-ils.auth", "open-ils.auth.authenticate.complete", [{ pin: "1234" }], ["open-ils.auth"]),
    );
    log.close();
    expect(lines(file)[0]).toEndWith("] CALL: open-ils.auth open-ils.auth.authenticate.complete **PARAMS REDACTED**");
  });
});

describe("stderr and fallbacks", () => {
  test('"stderr" and "-" write OpenSRF lines to stderr', () => {
    const err = stderrOf(`
      createLogger({ service: "svc", logfile: "stderr", loglevel: 2 }).warn("to stderr", "x");
      createLogger({ service: "svc2", logfile: "-", loglevel: 2 }).info("filtered");
      createLogger({ service: "svc3", logfile: "-", loglevel: 2 }).error("dash");
    `);
    const got = err.split("\n").filter(Boolean);
    expect(got).toHaveLength(2);
    expect(got[0]).toMatch(OSRF_LINE_PATTERN);
    expect(got[0]).toMatch(/^svc \S+ \S+ \[WARN:\d+:osrf-prefork:0:x\] to stderr$/);
    expect(got[1]).toMatch(/^svc3 .* dash$/);
  });

  test("an unopenable log file falls back to stderr with one warning", () => {
    const bad = join(DIR, "no-such-dir", "x.log");
    const err = stderrOf(`
      const log = createLogger({ service: "svc", logfile: ${JSON.stringify(bad)}, loglevel: 3 });
      log.info("one"); log.info("two");
    `);
    const got = err.split("\n").filter(Boolean);
    expect(got).toHaveLength(3);
    expect(got[0]).toContain(`cannot open log file ${bad}`);
    expect(got[1]).toMatch(/\] one$/);
    expect(got[2]).toMatch(/\] two$/);
  });

  test("syslog without a socket falls back to stderr with one warning", () => {
    const err = stderrOf(`
      const log = createLogger({ service: "svc", logfile: "syslog", loglevel: 3, syslogPath: ${JSON.stringify(join(DIR, "no-socket"))} });
      log.info("one"); log.error("two");
    `);
    const got = err.split("\n").filter(Boolean);
    expect(got).toHaveLength(3);
    expect(got[0]).toContain("syslog socket");
    expect(got[1]).toMatch(/^svc .*\[INFO:.*\] one$/);
  });
});

describe("syslog", () => {
  // A unix datagram receiver standing in for the syslog daemon.
  const libc = dlopen(process.platform === "darwin" ? "libc.dylib" : "libc.so.6", {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
  }).symbols;
  const DONTWAIT = process.platform === "darwin" ? 0x80 : 0x40;

  function receiver(path: string): { take(): string[]; close(): void } {
    const fd = libc.socket(1, 2, 0);
    const name = new TextEncoder().encode(path);
    const addr = new Uint8Array(2 + name.length + 1);
    if (process.platform === "darwin") {
      addr[0] = addr.length;
      addr[1] = 1;
    } else addr[0] = 1;
    addr.set(name, 2);
    expect(libc.bind(fd, ptr(addr), addr.length)).toBe(0);
    const buf = new Uint8Array(65536);
    return {
      take() {
        const out: string[] = [];
        for (;;) {
          const n = Number(libc.recv(fd, ptr(buf), buf.length, DONTWAIT));
          if (n < 0) return out;
          out.push(new TextDecoder().decode(buf.subarray(0, n)));
        }
      },
      close: () => void libc.close(fd),
    };
  }

  test("datagrams look like glibc syslog(3) output, with C's facilities", () => {
    const path = join(DIR, "syslog.sock");
    const rx = receiver(path);
    const time = new Date(2025, 4, 6, 7, 8, 9).getTime();
    const log = createLogger({
      service: "opensrf.math",
      logfile: "syslog",
      loglevel: 4,
      syslog: "local2",
      actlog: "local5",
      logtag: "inst1",
      syslogPath: path,
      component: "drone",
      now: () => time,
    });
    log.info("hello", "x1");
    log.error("oops");
    log.debug("dbg");
    log.activity("CALL: opensrf.math add 1,2");
    log.internal("filtered out");
    log.close();
    const got = rx.take();
    rx.close();
    const pid = process.pid;
    // local2 = 18, local5 = 21; severities: err 3, info 6, debug 7
    expect(got).toEqual([
      `<${18 * 8 + 6}>May  6 07:08:09 opensrf.math/inst1: [INFO:${pid}:drone:0:x1] hello`,
      `<${18 * 8 + 3}>May  6 07:08:09 opensrf.math/inst1: [ERR :${pid}:drone:0:] oops`,
      `<${18 * 8 + 7}>May  6 07:08:09 opensrf.math/inst1: [DEBG:${pid}:drone:0:] dbg`,
      `<${21 * 8 + 6}>May  6 07:08:09 opensrf.math/inst1: [ACT:${pid}:drone:0:] CALL: opensrf.math add 1,2`,
    ]);
  });

  test("default facilities local0/local1, long messages cut like C, secrets masked", () => {
    const path = join(DIR, "syslog2.sock");
    const rx = receiver(path);
    const log = createLogger({
      service: "s",
      logfile: "syslog",
      loglevel: 3,
      syslogPath: path,
      secrets: ["s3cr3t-value"],
    });
    log.info("x".repeat(2000));
    log.activity("act");
    log.warn("the password is s3cr3t-value");
    log.close();
    const [long, act, warn] = rx.take();
    rx.close();
    expect(long).toStartWith(`<${16 * 8 + 6}>`);
    const msg = (long ?? "").split("] ")[1] ?? "";
    expect(msg).toHaveLength(1535);
    expect(msg).toEndWith("x...");
    expect(act).toStartWith(`<${17 * 8 + 6}>`);
    expect(warn).not.toContain("s3cr3t-value");
  });
});
