/**
 * Security: secrets stay secret and only the right peers are served.
 *
 * - The XMPP passwords never appear in `ps` arguments, process environments, or any log
 *   or output of a run (at the most verbose log level, in clear or in SASL's base64 form).
 * - Params of log-protected methods (`log_protect/match_string`) are written as
 *   `**PARAMS REDACTED**`, also when the method fails.
 * - A listener serves only the routers it registered with: a request sent straight to its
 *   JID by a plain client is dropped and logged, never run.
 * - A drone's IPC channel is a private socket pair inherited from its listener: nothing
 *   listens for connections, a drone started any other way refuses to run, and malformed
 *   IPC messages are rejected with a log line on both ends (unit level).
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { FaultStack } from "../../devkit/fault-stack.ts";
import { childPids, readProc, waitUntil } from "../../devkit/load.ts";
import { TEST_USERS } from "../../devkit/osrf-config.ts";
import { runCli } from "../../devkit/processes.ts";
import { emptyBusMessage } from "../../src/bus/message.ts";
import { REDACTED_PARAMS } from "../../src/log/redact.ts";
import { type DroneChannel, DroneRuntime } from "../../src/prefork/drone.ts";
import {
  type DroneToListener,
  IpcMessageError,
  parseDroneMessage,
  parseListenerMessage,
} from "../../src/prefork/ipc.ts";
import { Pool } from "../../src/prefork/pool.ts";
import { encodeBody } from "../../src/protocol/codec.ts";
import { request } from "../../src/protocol/messages.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";
import { ManualClock } from "../../src/testing/manual-clock.ts";
import { useFaultStack } from "../harness/fault-suite.ts";
import { FakeSpawner, ONE_DRONE_LIMITS } from "../harness/prefork-fakes.ts";

const SERVICE = "fault.sec";
const SECRET_PARAM = "hunter2-param-secret";

const app = (marker: string) => `
import { appendFileSync } from "node:fs";
export default {
  methods: [
    { name: "pid", handler: () => process.pid },
    { name: "mark", argc: 1, handler: (_ctx, tag) => { appendFileSync(${JSON.stringify(marker)}, tag + "\\n"); return tag; } },
    { name: "secret.login", argc: 2, handler: (_ctx, user, _password) => "welcome " + user },
    { name: "secret.fail", argc: 2, handler: () => { throw new Error("login backend down"); } },
  ],
};
`;

let stack: FaultStack;
let marker: string;

// The marker path is only known once the stack's dir exists: write the app in two steps.
useFaultStack(
  {
    services: [{ name: SERVICE, app: "", unix: { min_children: 2, max_children: 3 } }],
    log: "file",
    loglevel: 5,
    // Match strings are method-name prefixes (e.g. open-ils.auth.authenticate.complete).
    core: { logProtect: ["secret."] },
    startServices: false,
  },
  async (s) => {
    stack = s;
    marker = join(stack.dir, "marker.txt");
    await Bun.write(join(stack.dir, `${SERVICE}.ts`), app(marker));
    await stack.startServe(SERVICE);
  },
);

/** Every text a run produced: log files in the stack's dirs, process outputs. */
function everything(): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const dirs = [stack.dir, join(stack.coreFile, "..")];
  for (const d of dirs) {
    for (const f of readdirSync(d)) {
      if (!f.endsWith(".log")) continue;
      out.push([join(d, f), readFileSync(join(d, f), "utf8")]);
    }
  }
  out.push(["router output", stack.router.output]);
  for (const [name, p] of stack.serves) out.push([`${name} output`, p.output]);
  return out;
}

const PASSWORDS = TEST_USERS.map(([, p]) => p);
/** The forms a password could leak in: clear, and inside SASL PLAIN's base64. */
function secretForms(): string[] {
  const forms = [...PASSWORDS];
  for (const [user, pw] of TEST_USERS) forms.push(Buffer.from(`\0${user}\0${pw}`).toString("base64"));
  return forms;
}

describe("secrets", () => {
  test("passwords appear in no process arguments, environment, log or output", async () => {
    // Exercise every path: requests, a session, a CLI request, a log-protected call.
    expect(typeof (await stack.client.request(SERVICE, "pid").first())).toBe("number");
    const session = stack.client.session(SERVICE);
    await session.connect();
    await session.request("pid").first();
    session.disconnect();
    const cli = await runCli(["request", "--config", stack.coreFile, SERVICE, "pid"]);
    expect(cli.code).toBe(0);

    const listener = stack.listenerPid(SERVICE);
    const drones = childPids(listener);
    expect(drones.length).toBeGreaterThanOrEqual(2);
    // `ps -eo args` of everything this test started (descendants of this process): other
    // programs on the machine are not ours to judge, but are reported.
    const ps = processTable();
    const ours = descendants(ps, process.pid);
    const lines = ps.filter((p) => ours.has(p.pid)).map((p) => p.args);
    expect(lines.some((l) => l.startsWith(`OpenSRF Listener [${SERVICE}]`))).toBe(true);
    expect(lines.filter((l) => l.startsWith(`OpenSRF Drone [${SERVICE}]`)).length).toBe(drones.length);
    const elsewhere = ps.filter((p) => !ours.has(p.pid) && secretForms().some((s) => p.args.includes(s)));
    if (elsewhere.length)
      console.log(
        `fault-security: WARNING: processes not started by this test show a test password in ps: ${elsewhere.map((p) => p.args.slice(0, 120)).join(" | ")}`,
      );
    for (const secret of secretForms()) {
      expect(lines.filter((l) => l.includes(secret))).toEqual([]);
      for (const pid of [listener, stack.router.pid, ...drones]) {
        for (const file of ["cmdline", "environ"]) {
          const text = readProc(pid, file, "latin1");
          if (text === undefined) continue; // exited meanwhile
          expect({ pid, file, leaks: text.includes(secret) }).toEqual({ pid, file, leaks: false });
        }
      }
    }
    for (const [where, text] of [...everything(), ["cli stdout", cli.stdout], ["cli stderr", cli.stderr]] as Array<
      [string, string]
    >) {
      for (const secret of secretForms())
        expect({ where, leaks: text.includes(secret) }).toEqual({ where, leaks: false });
    }
    // The run did log (level 5): an empty log would prove nothing.
    expect(readFileSync(stack.logFile(SERVICE), "utf8").length).toBeGreaterThan(1000);
  }, 30_000);

  test("params of log-protected methods are redacted, also when the method fails", async () => {
    expect(await stack.client.request(SERVICE, "secret.login", ["alice", SECRET_PARAM]).first()).toBe("welcome alice");
    await expect(stack.client.request(SERVICE, "secret.fail", ["alice", SECRET_PARAM]).first()).rejects.toThrow();
    expect(await stack.client.request(SERVICE, "mark", ["not-protected-param"]).first()).toBe("not-protected-param");
    await waitUntil("activity lines", () =>
      readFileSync(stack.logFile(SERVICE), "utf8").includes("not-protected-param"),
    );
    const log = readFileSync(stack.logFile(SERVICE), "utf8");
    expect(log).toContain(`Running ${SERVICE} secret.login [ ${REDACTED_PARAMS} ]`);
    expect(log).toContain(`Running ${SERVICE} secret.fail [ ${REDACTED_PARAMS} ]`);
    expect(log).toContain(`Running ${SERVICE} mark [ "not-protected-param" ]`);
    for (const [where, text] of everything())
      expect({ where, leaks: text.includes(SECRET_PARAM) }).toEqual({ where, leaks: false });
  }, 30_000);
});

describe("who may talk to whom", () => {
  test("a request sent straight to the listener JID by a plain client is dropped and logged, never run", async () => {
    const stats = (await stack.client
      .request("router", "opensrf.router.info.stats.class", [SERVICE])
      .first()) as Record<string, number>;
    const listenerJid = Object.keys(stats)[0]!;
    const raw = await stack.rawConnection("intruder");
    const replies: string[] = [];
    raw.onStanza((s) => replies.push(s.body));
    try {
      for (let i = 0; i < 5; i++) {
        raw.send({ to: listenerJid, thread: `direct-${i}`, body: encodeBody([request(1, "mark", [`direct-${i}`])]) });
        // Forged router fields change nothing: the XMPP server stamps `from`.
        raw.send({
          to: listenerJid,
          thread: `forged-${i}`,
          routerFrom: "router@localhost/router",
          body: encodeBody([request(1, "mark", [`forged-${i}`])]),
        });
      }
      await waitUntil("10 drop lines", () => {
        const log = readFileSync(stack.logFile(SERVICE), "utf8");
        return (
          log.split(`dropping a message from ${raw.jid}: not one of the routers it registered with`).length - 1 >= 10
        );
      });
      // Through the router the same request runs.
      expect(await stack.client.request(SERVICE, "mark", ["via-router"]).first()).toBe("via-router");
      await Bun.sleep(300);
      expect(replies).toEqual([]);
      expect(readFileSync(marker, "utf8").split("\n").filter(Boolean)).toEqual(["not-protected-param", "via-router"]);
    } finally {
      await raw.close();
    }
  }, 30_000);

  test("drones are reached only through the listener's private socket pairs: only its status socket listens", () => {
    const listener = stack.listenerPid(SERVICE);
    const pids = [listener, ...childPids(listener)];
    const listening = listeningSockets();
    // The default status socket (`<pid dir>/S.status.sock`, or `S.<digest>.status.sock` in
    // the per-user runtime dir) is the one thing a listener listens on; a drone, nothing.
    const statusSocket = new RegExp(`/${SERVICE.replaceAll(".", "\\.")}(\\.[0-9a-f]{12})?\\.status\\.sock$`);
    for (const pid of pids) {
      const mine = socketInodes(pid);
      expect(mine.size).toBeGreaterThan(0);
      const open = [...mine].flatMap((i) => (listening.has(i) ? [listening.get(i) ?? ""] : []));
      if (pid !== listener) expect({ pid, listening: open }).toEqual({ pid, listening: [] });
      else expect({ pid, listening: open.map((path) => statusSocket.test(path)) }).toEqual({ pid, listening: [true] });
    }
  });

  test("a drone started other than by its listener refuses to run", async () => {
    const r = await runCli(["drone"], { timeoutMs: 10_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("must be started by `osrf-prefork serve` (no IPC channel)");
  });
});

// ---------------------------------------------------------------------------------------------
// IPC, unit level

const BAD_TO_DRONE: unknown[] = [
  null,
  undefined,
  42,
  "init",
  [],
  {},
  { type: 1 },
  { type: "explode" },
  { type: "init" },
  { type: "init", init: null },
  { type: "init", init: { service: "s" } },
  {
    type: "init",
    init: {
      service: "s",
      appPath: "/x",
      hostname: "h",
      client: {},
      settings: {},
      log: {},
      maxRequests: "10",
      logProtect: [],
    },
  },
  { type: "request" },
  { type: "request", stanza: "<message/>" },
  { type: "request", stanza: { to: "a", from: "b" } },
  {
    type: "request",
    stanza: { ...emptyBusMessage(), to: 1 },
  },
  { type: "shutdown" },
  { type: "shutdown", graceful: "yes" },
];

const BAD_TO_LISTENER: unknown[] = [
  null,
  7,
  "ready",
  [],
  {},
  { type: "ready" },
  { type: "ready", address: 5 },
  { type: "busy", method: "m" },
  { type: "busy", method: "m", since: 1, caller: { to: "x" } },
  { type: "busy", method: "m", since: 1, caller: { to: "x", thread: "t", xid: "", threadTraces: ["1"] } },
  { type: "waiting" },
  { type: "available", served: "1", rssBytes: 0 },
  { type: "exiting", reason: "bored", served: 1 },
  { type: "exiting", reason: "shutdown", served: 1, detail: 5 },
  { type: "hello" },
];

class FakeChannel implements DroneChannel {
  sent: DroneToListener[] = [];
  private onMsg: (m: unknown) => void = () => {};
  send(msg: DroneToListener, flushed?: () => void): void {
    this.sent.push(msg);
    flushed?.();
  }
  onMessage(cb: (m: unknown) => void): void {
    this.onMsg = cb;
  }
  onDisconnect(): void {}
  deliver(m: unknown): void {
    this.onMsg(m);
  }
}

describe("IPC messages are checked on both ends", () => {
  test("the parsers reject every malformed message with an IpcMessageError", () => {
    for (const m of BAD_TO_DRONE) expect(() => parseListenerMessage(m)).toThrow(IpcMessageError);
    for (const m of BAD_TO_LISTENER) expect(() => parseDroneMessage(m)).toThrow(IpcMessageError);
  });

  test("a drone given malformed IPC messages logs each and carries on; it neither runs nor exits", () => {
    const channel = new FakeChannel();
    const exits: number[] = [];
    const warnings: string[] = [];
    const write = process.stderr.write;
    // Before its init the drone has no logger and writes to stderr.
    process.stderr.write = ((s: string) => {
      warnings.push(String(s));
      return true;
    }) as typeof process.stderr.write;
    try {
      const drone = new DroneRuntime(channel, (code) => void exits.push(code));
      drone.start();
      for (const m of BAD_TO_DRONE) channel.deliver(m);
    } finally {
      process.stderr.write = write;
    }
    expect(exits).toEqual([]);
    expect(channel.sent).toEqual([]);
    expect(warnings.filter((w) => w.includes("bad IPC message"))).toHaveLength(BAD_TO_DRONE.length);
  });

  test("the pool given malformed messages by a drone logs each and keeps the drone's state", () => {
    const logger = new RecordingLogger();
    const spawner = new FakeSpawner();
    // No time passes: nothing the pool schedules runs.
    const pool = new Pool({
      service: "svc",
      spawner,
      limits: ONE_DRONE_LIMITS,
      hooks: { fail: () => {} },
      logger,
      clock: new ManualClock(),
    });
    pool.start();
    expect(pool.stats().total).toBe(1);
    const drone = spawner.drones[0]!;
    for (const m of BAD_TO_LISTENER) drone.events.message(m);
    expect(
      logger.messages("warn").filter((m) => m.startsWith(`drone ${drone.pid} of svc: bad IPC message`)),
    ).toHaveLength(BAD_TO_LISTENER.length);
    expect(pool.stats()).toMatchObject({ idle: 1, active: 0, retiring: 0, total: 1 });
  });
});

// ---------------------------------------------------------------------------------------------
// /proc helpers

interface PsRow {
  pid: number;
  ppid: number;
  args: string;
}

/** `ps -eo pid,ppid,args` of every live process. */
function processTable(): PsRow[] {
  const out = Bun.spawnSync(["ps", "-eo", "pid=,ppid=,stat=,args="]).stdout.toString();
  return out
    .split("\n")
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && !m[3]!.startsWith("Z"))
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[4]! }));
}

function descendants(rows: PsRow[], root: number): Set<number> {
  const out = new Set<number>();
  const queue = [root];
  while (queue.length) {
    const p = queue.shift()!;
    for (const r of rows) {
      if (r.ppid !== p || out.has(r.pid)) continue;
      out.add(r.pid);
      queue.push(r.pid);
    }
  }
  return out;
}

/** Inodes of the sockets `pid` holds. */
function socketInodes(pid: number): Set<number> {
  const out = new Set<number>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/**
 * Every listening TCP socket and every listening unix socket on the machine, by inode, with
 * the unix socket's path ("" for TCP and unnamed sockets).
 */
function listeningSockets(): Map<number, string> {
  const out = new Map<number, string>();
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, "utf8").split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === "0A") out.set(Number(cols[9]), ""); // state LISTEN
    }
  }
  if (existsSync("/proc/net/unix")) {
    for (const line of readFileSync("/proc/net/unix", "utf8").split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // Flags __SO_ACCEPTCON (0x10000): a listening socket.
      if (cols[3] && (parseInt(cols[3], 16) & 0x10000) !== 0) out.set(Number(cols[6]), cols[7] ?? "");
    }
  }
  return out;
}
