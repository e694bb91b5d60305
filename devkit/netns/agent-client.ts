/**
 * The test side of an agent (agent.ts): starts it on a test host and sends it commands.
 *
 * ```ts
 * const agent = await AgentHandle.start(net.host("d"), coreFile);
 * const r = await agent.request("opensrf.tsmath", "add", [2, 2]);   // r.result → [4], r.from → the drone's JID
 * await agent.stop();
 * ```
 */
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import type { JsonValue } from "../../src/protocol/types.ts";
import type { AgentCommand, CallOutcome, LoadReply, LoginTarget, SessionRecord } from "./agent-protocol.ts";
import type { TestHost } from "./network.ts";

const ROOT = resolve(import.meta.dir, "../..");
const SCRIPT = join(import.meta.dir, "agent.ts");

/** Distributes `Omit` over the command union, so each variant keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;
type Command = WithoutId<AgentCommand>;

/** The agent died or answered with an error. */
export class AgentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AgentError";
  }
}

/** The reply to a single request. */
export interface RequestReply {
  /** The results, when it succeeded. */
  result?: JsonValue[];
  /** Who answered (the drone's JID). */
  from?: string;
  /** How it failed (see {@link CallOutcome}), when it did. */
  failed?: CallOutcome;
  message?: string;
}

/** A running agent on one test host. */
export class AgentHandle {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  private readonly eventWaiters: Array<{ match: (e: Record<string, unknown>) => boolean; resolve: () => void }> = [];
  private stderr = "";
  private exited = false;

  private constructor(
    readonly host: TestHost,
    private readonly proc: Subprocess<"pipe", "pipe", "pipe">,
  ) {
    void this.readLines();
    void (async () => {
      for await (const chunk of proc.stderr)
        this.stderr = (this.stderr + new TextDecoder().decode(chunk)).slice(-20_000);
    })();
    void proc.exited.then((code) => {
      this.exited = true;
      const err = new AgentError(`agent on ${host.name} exited with code ${code}: ${this.stderr.slice(-2000)}`);
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
  }

  /** Starts the agent on `host` with this opensrf_core.xml and waits until it is ready. */
  static async start(host: TestHost, coreFile: string, timeoutMs = 30_000): Promise<AgentHandle> {
    const proc = host.spawn([process.execPath, SCRIPT, "--config", coreFile], {
      cwd: ROOT,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    }) as unknown as Subprocess<"pipe", "pipe", "pipe">;
    const agent = new AgentHandle(host, proc);
    const ready = agent.waitEvent((e) => e.event === "ready");
    const timer = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new AgentError(`agent on ${host.name} not ready in ${timeoutMs} ms`)), timeoutMs),
    );
    try {
      await Promise.race([ready, timer, proc.exited.then((c) => Promise.reject(new AgentError(`agent exited ${c}`)))]);
    } catch (e) {
      proc.kill("SIGKILL");
      throw new AgentError(`${(e as Error).message}: ${agent.stderr.slice(-2000)}`);
    }
    return agent;
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** Sends a command and resolves with its reply (rejects with the agent's error). */
  async send<T extends Record<string, unknown>>(cmd: Command): Promise<T> {
    if (this.exited) throw new AgentError(`agent on ${this.host.name} is not running: ${this.stderr.slice(-2000)}`);
    const id = this.nextId++;
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.proc.stdin.write(`${JSON.stringify({ ...cmd, id })}\n`);
    this.proc.stdin.flush();
    const r = await reply;
    if (r.ok !== true) throw new AgentError(`agent on ${this.host.name}: ${cmd.op} failed: ${String(r.error)}`);
    return r as T;
  }

  /** Starts a command and returns its id at once (for `stop-load`) with the reply to come. */
  start<T extends Record<string, unknown>>(cmd: Command): { id: number; reply: Promise<T> } {
    const id = this.nextId;
    return { id, reply: this.send<T>(cmd) };
  }

  /** Logs in to the client account once (later calls reuse it). */
  async connect(): Promise<string> {
    return (await this.send<{ jid: string }>({ op: "connect" })).jid;
  }

  async request(service: string, method: string, params: JsonValue[] = [], timeout = 10): Promise<RequestReply> {
    return this.send<RequestReply & Record<string, unknown>>({ op: "request", service, method, params, timeout });
  }

  /** A SASL login with `target` works (rejects with the server's answer otherwise). */
  async loginCheck(target: LoginTarget, timeoutMs = 2000): Promise<void> {
    await this.send({ op: "login-check", target, timeoutMs });
  }

  async register(target: LoginTarget): Promise<void> {
    await this.send({ op: "register", target });
  }

  /** Runs a load; `stopLoad` ends it early. */
  load(cmd: Omit<Extract<Command, { op: "load" }>, "op">): { id: number; reply: Promise<LoadReply> } {
    return this.start<LoadReply & Record<string, unknown>>({ op: "load", ...cmd });
  }

  async stopLoad(id: number): Promise<void> {
    await this.send({ op: "stop-load", load: id });
  }

  /**
   * Resolves with the milliseconds until the XMPP server answered a ping to `jid` with an
   * error (its session is gone), -1 if that did not happen within `timeoutMs`.
   */
  async untilGone(jid: string, everyMs = 20, timeoutMs = 60_000): Promise<number> {
    return (await this.send<{ goneAfterMs: number }>({ op: "until-gone", jid, everyMs, timeoutMs })).goneAfterMs;
  }

  async sessions(cmd: Omit<Extract<Command, { op: "sessions" }>, "op">): Promise<SessionRecord[]> {
    return (await this.send<{ sessions: SessionRecord[] }>({ op: "sessions", ...cmd })).sessions;
  }

  /** Asks the agent to quit, then makes sure it is gone. */
  async stop(): Promise<void> {
    if (!this.exited) {
      await Promise.race([this.send({ op: "quit" }).catch(() => {}), Bun.sleep(2000)]);
    }
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
    await this.proc.exited;
    clearTimeout(timer);
  }

  /** Its stderr so far (for failure messages). */
  get log(): string {
    return this.stderr;
  }

  private waitEvent(match: (e: Record<string, unknown>) => boolean): Promise<void> {
    return new Promise((resolve) => this.eventWaiters.push({ match, resolve }));
  }

  private async readLines(): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of this.proc.stdout) {
      buf += dec.decode(chunk, { stream: true });
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) this.onLine(line);
      }
    }
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.stderr += `\n(unparsed agent output) ${line.slice(0, 500)}`;
      return;
    }
    if (typeof msg.id === "number") {
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      w?.resolve(msg);
      return;
    }
    for (let i = this.eventWaiters.length - 1; i >= 0; i--) {
      const w = this.eventWaiters[i]!;
      if (w.match(msg)) {
        this.eventWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }
}
