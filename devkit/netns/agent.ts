/**
 * The client side of a multi-host test, run as a process on a test host (`bun agent.ts
 * --config opensrf_core.xml`): one OpenSRF client logged in from that host, driven over
 * stdin/stdout with one JSON object per line. The test process cannot reach the hosts'
 * private network itself, so everything a caller does happens here.
 *
 * Requests: `{"id":1,"op":"request",...}`; every request gets exactly one reply
 * `{"id":1,"ok":true,...}` or `{"id":1,"ok":false,"error":"..."}`. Unprompted lines carry
 * `"event"` instead of `"id"`. {@link AgentHandle} (agent-client.ts) is the typed side.
 */
import { hostname } from "node:os";
import { createInterface } from "node:readline";
import { Client } from "../../src/client/client.ts";
import { DeliveryError, RequestError, TimeoutError } from "../../src/client/errors.ts";
import { readCoreConfig } from "../../src/config/core.ts";
import { makeResource } from "../../src/protocol/ids.ts";
import type { JsonValue } from "../../src/protocol/types.ts";
import { XmppConnection } from "../../src/xmpp/connection.ts";
import { clientConnectionOptions } from "../../src/xmpp/from-config.ts";
import { quietLogger } from "../quiet-logger.ts";
import { firstTagAttr, inBandRegister, saslLogin, saslPlainCheck } from "../raw-xmpp.ts";
import type { AgentCommand, CallOutcome, LoadRecord, SessionRecord } from "./agent-protocol.ts";

const args = process.argv.slice(2);
const configFile = args[args.indexOf("--config") + 1];
if (!configFile || args.indexOf("--config") < 0) {
  process.stderr.write("usage: agent.ts --config opensrf_core.xml\n");
  process.exit(2);
}

const write = (o: object): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

const logger = quietLogger("agent");
const core = readCoreConfig(configFile);
let client: Client | undefined;
let conn: XmppConnection | undefined;
/** Who sent the last non-error reply carrying each xid: the drone (or router) that answered. */
const answeredBy = new Map<string, string>();
const loads = new Map<number, { stop: boolean }>();
const t0 = Date.now();

async function connect(): Promise<Client> {
  if (client) return client;
  conn = await XmppConnection.connect(clientConnectionOptions(core.opensrf, makeResource("", hostname()), logger));
  const c = new Client({ transport: conn, routerName: core.opensrf.routerName, logger, timeout: 30 });
  conn.onStanza((s) => {
    if (!s.error && s.xid) answeredBy.set(s.xid, s.from);
    c.dispatch(s);
  });
  client = c;
  return c;
}

/** What became of one call, in the load generator's buckets. */
function outcomeOf(e: unknown): { outcome: CallOutcome; message: string } {
  const message = (e as Error)?.message ?? String(e);
  if (e instanceof TimeoutError) return { outcome: "lost", message };
  if (e instanceof RequestError) return { outcome: `status ${e.statusCode}`, message };
  if (e instanceof DeliveryError) return { outcome: `delivery ${e.condition}`, message };
  return { outcome: `error ${(e as Error)?.name ?? typeof e}`, message };
}

/** `"$i"` anywhere in the params stands for the request's index. */
function paramsFor(template: JsonValue[], i: number): JsonValue[] {
  return template.map((p) => (p === "$i" ? i : p));
}

async function handle(cmd: AgentCommand): Promise<object> {
  switch (cmd.op) {
    case "hello":
      return { hostname: hostname(), pid: process.pid };
    case "connect":
      await connect();
      return { jid: conn?.jid ?? "" };
    case "login-check":
      await saslPlainCheck({ ...cmd.target, timeoutMs: cmd.timeoutMs ?? 2000 });
      return {};
    case "register":
      await inBandRegister({ ...cmd.target, timeoutMs: cmd.timeoutMs ?? 5000 });
      return {};
    case "request": {
      const c = await connect();
      const xid = cmd.xid ?? `agent-${process.pid}-${cmd.id}`;
      try {
        const result = await c
          .request(cmd.service, cmd.method, cmd.params ?? [], { timeout: cmd.timeout ?? 10, xid })
          .collect();
        return { result, from: answeredBy.get(xid) ?? "" };
      } catch (e) {
        const o = outcomeOf(e);
        return { failed: o.outcome, message: o.message };
      } finally {
        answeredBy.delete(xid);
      }
    }
    case "load":
      return runLoad(cmd);
    case "stop-load": {
      const l = loads.get(cmd.load);
      if (l) l.stop = true;
      return { found: l !== undefined };
    }
    case "sessions":
      return runSessions(cmd);
    case "until-gone":
      return untilGone(cmd);
    case "quit":
      setTimeout(() => void shutdown(0), 10);
      return {};
  }
}

/** A bounded load: `total` requests, `concurrency` at once, stopped early by `stop-load`. */
async function runLoad(cmd: Extract<AgentCommand, { op: "load" }>): Promise<object> {
  const c = await connect();
  const state = { stop: false };
  loads.set(cmd.id, state);
  const records: LoadRecord[] = [];
  const deadline = Date.now() + (cmd.deadlineMs ?? 120_000);
  let next = 0;
  const started = Date.now();
  write({ event: "load-started", load: cmd.id, at: started });
  const worker = async (): Promise<void> => {
    while (next < cmd.total && !state.stop && Date.now() < deadline) {
      const i = next++;
      const xid = `${cmd.tag}-${i}`;
      const sent = Date.now();
      const rec: LoadRecord = { i, xid, sent, ms: 0, outcome: "ok", from: "" };
      try {
        const result = await c
          .request(cmd.service, cmd.method, paramsFor(cmd.params, i), { timeout: cmd.timeout, xid })
          .collect();
        rec.result = result[0] ?? null;
        rec.from = answeredBy.get(xid) ?? "";
      } catch (e) {
        const o = outcomeOf(e);
        rec.outcome = o.outcome;
        rec.message = o.message.slice(0, 300);
      }
      answeredBy.delete(xid);
      rec.ms = Date.now() - sent;
      records.push(rec);
      if (cmd.pauseMs) await Bun.sleep(cmd.pauseMs);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, cmd.concurrency) }, worker));
  loads.delete(cmd.id);
  return { records, started, elapsedMs: Date.now() - started };
}

/** `count` CONNECT sessions, each sending `requests` requests in turn; who answered each. */
async function runSessions(cmd: Extract<AgentCommand, { op: "sessions" }>): Promise<object> {
  const c = await connect();
  const one = async (k: number): Promise<SessionRecord> => {
    const s = c.session(cmd.service);
    const rec: SessionRecord = { remote: "", froms: [], results: [], errors: [] };
    try {
      await s.connect({ timeout: cmd.timeout });
      rec.remote = s.remote;
      for (let j = 0; j < cmd.requests; j++) {
        const xid = `${cmd.tag}-${k}-${j}`;
        try {
          const out = await s.request(cmd.method, paramsFor(cmd.params, j), { timeout: cmd.timeout, xid }).collect();
          rec.results.push(out[0] ?? null);
          rec.froms.push(answeredBy.get(xid) ?? "");
        } catch (e) {
          rec.errors.push(outcomeOf(e).message.slice(0, 300));
        }
        answeredBy.delete(xid);
      }
    } catch (e) {
      rec.errors.push(`connect: ${outcomeOf(e).message.slice(0, 300)}`);
    } finally {
      s.disconnect();
    }
    return rec;
  };
  const sessions = await Promise.all(Array.from({ length: cmd.count }, (_, k) => one(k)));
  return { sessions };
}

/** See the `until-gone` command: pings until the server answers for `jid` with an error. */
async function untilGone(cmd: Extract<AgentCommand, { op: "until-gone" }>): Promise<object> {
  const o = core.opensrf;
  const session = await saslLogin({
    host: o.server,
    port: o.port,
    domain: o.domain,
    user: o.username,
    password: o.passwd,
    resource: makeResource("", `${hostname()}-pinger`),
  });
  const started = Date.now();
  try {
    for (let n = 1; Date.now() - started < cmd.timeoutMs; n++) {
      const id = `gone-${n}`;
      const sentAt = Date.now();
      session.send(`<iq type='get' id='${id}' to='${cmd.jid}'><ping xmlns='urn:xmpp:ping'/></iq>`);
      // Answers to earlier pings may still come: read until this one's, or its time is up.
      for (;;) {
        const left = cmd.everyMs - (Date.now() - sentAt);
        if (left <= 0) break;
        const stanza = await session.nextStanza(left).catch(() => "");
        if (!stanza) break;
        if (firstTagAttr(stanza, "type") === "error") return { goneAfterMs: Date.now() - started, pings: n };
        if (firstTagAttr(stanza, "id") === id) break;
      }
      const rest = cmd.everyMs - (Date.now() - sentAt);
      if (rest > 0) await Bun.sleep(rest);
    }
    return { goneAfterMs: -1, pings: 0 };
  } finally {
    session.close();
  }
}

async function shutdown(code: number): Promise<void> {
  try {
    await client?.close();
    await conn?.close();
  } finally {
    process.exit(code);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let cmd: AgentCommand;
  try {
    cmd = JSON.parse(line) as AgentCommand;
  } catch {
    write({ event: "bad-input", line: line.slice(0, 200) });
    return;
  }
  handle(cmd).then(
    (out) => write({ id: cmd.id, ok: true, ...out }),
    (e: unknown) => write({ id: cmd.id, ok: false, error: (e as Error)?.message ?? String(e) }),
  );
});
// The test process went away: nothing is left to drive us.
rl.on("close", () => void shutdown(0));
write({ event: "ready", pid: process.pid, hostname: hostname(), sinceMs: Date.now() - t0 });
