import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

const ROOT = resolve(import.meta.dir, "..");

/**
 * How tests run osrf-prefork: the compiled binary when OSRF_PREFORK_BIN is set
 * (shipping tests), otherwise `bun src/cli.ts`.
 */
export function cliCommand(): string[] {
  const bin = process.env.OSRF_PREFORK_BIN;
  return bin ? [resolve(bin)] : [process.execPath, join(ROOT, "src/cli.ts")];
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How {@link runCommand} runs a command. */
export interface RunCommandOptions {
  cwd?: string;
  /** Added to this process's environment, or with `inheritEnv: false` the whole of it. */
  env?: Record<string, string>;
  /** False: the command gets `env` only (default true). */
  inheritEnv?: boolean;
  /** What the command reads (default nothing). */
  stdin?: "ignore" | Uint8Array | ReturnType<typeof Bun.file>;
  /** SIGKILL after this many ms (default: no bound). */
  timeoutMs?: number;
}

/** What a command printed and how it ended; `timedOut` when {@link RunCommandOptions.timeoutMs} killed it. */
export interface CommandResult extends CliResult {
  timedOut: boolean;
}

/** Runs `cmd` to completion and returns its exit code and both outputs. */
export async function runCommand(cmd: readonly string[], o: RunCommandOptions = {}): Promise<CommandResult> {
  const proc = Bun.spawn([...cmd], {
    ...(o.cwd === undefined ? {} : { cwd: o.cwd }),
    env: o.inheritEnv === false ? { ...o.env } : { ...process.env, ...o.env },
    stdin: o.stdin ?? "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let timedOut = false;
  const timer =
    o.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          proc.kill("SIGKILL");
        }, o.timeoutMs);
  try {
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { code, stdout, stderr, timedOut };
  } finally {
    clearTimeout(timer);
  }
}

/** Run a short-lived command to completion (bounded by `timeoutMs`). */
export async function runCli(
  args: string[],
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const { code, stdout, stderr } = await runCommand([...cliCommand(), ...args], {
    cwd: ROOT,
    timeoutMs: opts.timeoutMs ?? 30_000,
    ...(opts.env ? { env: opts.env } : {}),
  });
  return { code, stdout, stderr };
}

/** What {@link serveArgs} needs: one service, its module and its config files. */
export interface ServeArgs {
  service: string;
  /** The service module. */
  app: string;
  /** opensrf_core.xml. */
  config: string;
  /** opensrf.xml the settings are read from. */
  settings: string;
  /** The /opensrf/hosts/<host> section (default "testhost", the one the tests write). */
  host?: string;
  /** Default "stderr": kept in the CliProcess's output. */
  logfile?: string;
  /** Default 3 (info). */
  loglevel?: number;
}

/** `osrf-prefork serve` arguments for one service with its settings from a file; `extra` go last. */
export function serveArgs(o: ServeArgs, extra: string[] = []): string[] {
  return [
    "serve",
    "--service",
    o.service,
    "--app",
    o.app,
    "--config",
    o.config,
    "--settings",
    o.settings,
    "--host",
    o.host ?? "testhost",
    "--logfile",
    o.logfile ?? "stderr",
    "--loglevel",
    String(o.loglevel ?? 3),
    ...extra,
  ];
}

/** A long-running osrf-prefork process (router, serve) with its output collected. */
export class CliProcess {
  output = "";
  private waiters: Array<{ re: RegExp; resolve: () => void }> = [];

  private constructor(readonly proc: Subprocess<"ignore", "pipe", "pipe">) {
    void this.pump(proc.stdout);
    void this.pump(proc.stderr);
  }

  /**
   * Starts `osrf-prefork <args>`. `wrap` turns the command into the one actually run, e.g.
   * to start it on a test host (devkit/netns: `host.command(cmd)`); it must keep the pid.
   */
  static start(
    args: string[],
    opts: { env?: Record<string, string>; argv0?: string; wrap?: (cmd: string[]) => string[] } = {},
  ): CliProcess {
    const cmd = [...cliCommand(), ...args];
    const proc = Bun.spawn(opts.wrap ? opts.wrap(cmd) : cmd, {
      cwd: ROOT,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, ...opts.env },
    });
    return new CliProcess(proc);
  }

  get pid(): number {
    return this.proc.pid;
  }

  private async pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      this.output += dec.decode(chunk, { stream: true });
      this.waiters = this.waiters.filter((w) => {
        if (!w.re.test(this.output)) return true;
        w.resolve();
        return false;
      });
    }
  }

  /** Resolve when the combined output matches `re`; reject after `timeoutMs` with the output so far. */
  waitFor(re: RegExp, timeoutMs = 15_000): Promise<void> {
    if (re.test(this.output)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${re} in output:\n${this.output.slice(-3000)}`)),
        timeoutMs,
      );
      this.waiters.push({
        re,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** Waits for `ready`, failing at once (with the output so far) if the process exits first. */
  async untilReady(ready: Promise<unknown>): Promise<void> {
    const first = await Promise.race([ready.then(() => "ready" as const), this.proc.exited]);
    if (first !== "ready")
      throw new Error(`osrf-prefork exited with code ${first} during start-up:\n${this.output.slice(-3000)}`);
  }

  /** Send a signal and wait for exit (SIGKILL after `graceMs`). Returns the exit code. */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<number> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc.exitCode ?? 128;
    this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs);
    const code = await this.proc.exited;
    clearTimeout(timer);
    return code;
  }
}
