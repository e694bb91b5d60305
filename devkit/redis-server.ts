/**
 * A private, loopback-only redis-server (Debian's) for tests of the Redis bus: its own config
 * and directory, a free port, no persistence, and the ACL accounts of OpenSRF main's
 * `redis-accounts.txt` (`opensrf` and `router` may only LPOP/BLPOP/RPUSH/DEL on the
 * `opensrf:router:*`, `opensrf:service:*` and `opensrf:client:*` keys) applied the way
 * `osrf_control --reset-message-bus` does it, by piping that script into redis-cli as the admin.
 *
 * ```ts
 * const redis = await startRedisServer();
 * await redis.admin(["RPUSH", "opensrf:client:…", "not json"]);
 * await redis.restart(); // same port, lists gone, accounts applied again
 * await redis.stop();
 * ```
 */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { RespValue } from "../src/redis/resp.ts";
import { RespConnection } from "../src/redis/resp-client.ts";
import { killAtExit, releaseAtExit } from "./exit-kill.ts";
import { freePort } from "./ports.ts";
import { runCommand } from "./processes.ts";

/** `[username, password]` of the bus accounts (test passwords). */
export interface RedisAccounts {
  /** Services, drones and clients. */
  opensrf: [string, string];
  /** The router. */
  router: [string, string];
  /** The `default` user: may do anything (MONITOR, RPUSH of junk, ACL). */
  admin: [string, string];
}

/** The test accounts, the same on every private server. */
export const REDIS_TEST_ACCOUNTS: RedisAccounts = {
  opensrf: ["opensrf", "osrf-redis-test-pass"],
  router: ["router", "router-redis-test-pass"],
  admin: ["default", "admin-redis-test-pass"],
};

/** A running private redis-server. */
export interface RedisServer {
  readonly host: "127.0.0.1";
  /** Stays the same across {@link restart}. */
  readonly port: number;
  readonly accounts: RedisAccounts;
  /** Private directory of config, accounts script and log; removed by {@link stop}. */
  readonly dir: string;
  /** The `redis-accounts.txt`-style script applied after each start. */
  readonly accountsFile: string;
  /** Pid of the current redis-server process (changes on restart). */
  readonly pid: number;
  /** One command as the admin user. */
  admin(args: string[]): Promise<RespValue>;
  /** SIGKILL, no clean shutdown: clients see their sockets reset. Start it again with {@link start}. */
  kill(): Promise<void>;
  /** Starts it again (after {@link kill}) on the same port and re-applies the accounts. */
  start(): Promise<void>;
  /** {@link kill} then {@link start}: every list is gone afterwards (no persistence). */
  restart(): Promise<void>;
  /** Stops it and removes {@link dir}. Idempotent. */
  stop(): Promise<void>;
  /** The last `lines` lines of its log. */
  logTail(lines?: number): string;
}

/** Options for {@link startRedisServer}. */
export interface StartRedisOptions {
  /** Accounts (default {@link REDIS_TEST_ACCOUNTS}). */
  accounts?: RedisAccounts;
  /** Bound for the server to accept the admin login (default 15 s). */
  startTimeoutMs?: number;
}

/** The accounts script, laid out as OpenSRF main's examples/redis-accounts.txt.example. */
export function redisAccountsScript(a: RedisAccounts): string {
  const keys = "~opensrf:router:* ~opensrf:service:* ~opensrf:client:*";
  return [
    `ACL SETUSER ${a.opensrf[0]} reset`,
    `ACL SETUSER ${a.opensrf[0]} on >${a.opensrf[1]}`,
    `ACL SETUSER ${a.opensrf[0]} -@all +lpop +blpop +rpush +del ${keys}`,
    `ACL SETUSER ${a.router[0]} reset`,
    `ACL SETUSER ${a.router[0]} on >${a.router[1]}`,
    `ACL SETUSER ${a.router[0]} -@all +lpop +blpop +rpush +del ${keys}`,
    // default last, so the logged-in admin is not cut off mid-script (as the example says)
    `ACL SETUSER ${a.admin[0]} resetpass`,
    `ACL SETUSER ${a.admin[0]} on >${a.admin[1]}`,
    `CONFIG SET save ""`,
    "",
  ].join("\n");
}

/** Starts a private redis-server on a free loopback port with the OpenSRF accounts. */
export async function startRedisServer(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const redisServer = which("redis-server");
  const redisCli = which("redis-cli");
  if (!redisServer || !redisCli) {
    throw new Error(
      "redis-server/redis-cli are not installed: apt-get install redis-server redis-tools " +
        "(scripts/install-deps.sh and devkit/opensrf/build.sh --release main install them)",
    );
  }
  const accounts = opts.accounts ?? REDIS_TEST_ACCOUNTS;
  const dir = mkdtempSync(join(tmpdir(), "osrf-redis-"));
  const port = await freePort();
  const conf = join(dir, "redis.conf");
  const log = join(dir, "redis.log");
  const accountsFile = join(dir, "redis-accounts.txt");
  // The admin password is in the config from the start: redis-cli must log in to apply the script.
  writeFileSync(
    conf,
    [
      "bind 127.0.0.1",
      `port ${port}`,
      "protected-mode yes",
      "daemonize no",
      `dir ${dir}`,
      'save ""',
      "appendonly no",
      `logfile ${log}`,
      `user ${accounts.admin[0]} on >${accounts.admin[1]} ~* &* +@all`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  writeFileSync(accountsFile, redisAccountsScript(accounts), { mode: 0o600 });
  const server = new PrivateRedis(redisServer, redisCli, dir, port, conf, log, accountsFile, accounts, opts);
  try {
    await server.start();
  } catch (e) {
    await server.stop().catch(() => {});
    throw e;
  }
  return server;
}

class PrivateRedis implements RedisServer {
  readonly host = "127.0.0.1" as const;
  private child: Subprocess | undefined;
  private stopped = false;

  constructor(
    private readonly serverBin: string,
    private readonly cliBin: string,
    readonly dir: string,
    readonly port: number,
    private readonly conf: string,
    private readonly log: string,
    readonly accountsFile: string,
    readonly accounts: RedisAccounts,
    private readonly opts: StartRedisOptions,
  ) {
    killAtExit(this);
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const out = openSync(join(this.dir, "redis.out"), "a");
    let child: Subprocess;
    try {
      child = Bun.spawn([this.serverBin, this.conf], { stdin: "ignore", stdout: out, stderr: out });
    } finally {
      closeSync(out);
    }
    this.child = child;
    let exited = false;
    void child.exited.then(() => (exited = true));
    const deadline = performance.now() + (this.opts.startTimeoutMs ?? 15_000);
    for (;;) {
      try {
        await this.admin(["PING"]);
        break;
      } catch (e) {
        if (exited || performance.now() > deadline) {
          throw new Error(
            `redis-server on 127.0.0.1:${this.port} did not start (${(e as Error).message}):\n${this.logTail()}`,
          );
        }
        await Bun.sleep(25);
      }
    }
    await this.applyAccounts();
  }

  async admin(args: string[]): Promise<RespValue> {
    const [user, pass] = this.accounts.admin;
    const c = await RespConnection.connect({
      host: this.host,
      port: this.port,
      username: user,
      password: pass,
      connectTimeoutMs: 2_000,
    });
    try {
      return await c.command(args);
    } finally {
      c.destroy();
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill("SIGKILL");
    await child.exited;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.kill();
    releaseAtExit(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  killSync(): void {
    this.child?.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(lines = 30): string {
    if (!existsSync(this.log)) return "(no redis log)";
    return readFileSync(this.log, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  }

  /** Pipes the accounts script into redis-cli as the admin, as osrf_control --reset-message-bus does. */
  private async applyAccounts(): Promise<void> {
    const [user, pass] = this.accounts.admin;
    // REDISCLI_AUTH keeps the password out of the process list.
    const {
      code,
      stdout: out,
      stderr: err,
    } = await runCommand([this.cliBin, "-h", this.host, "-p", String(this.port), "--user", user], {
      env: { REDISCLI_AUTH: pass },
      stdin: Bun.file(this.accountsFile),
    });
    const bad = out.split("\n").filter((l) => l.startsWith("(error)") || l.startsWith("ERR"));
    if (code !== 0 || bad.length > 0) {
      throw new Error(`applying ${this.accountsFile} failed (exit ${code}): ${[...bad, err.trim()].join("; ")}`);
    }
  }
}

function which(name: string): string | null {
  return Bun.which(name, { PATH: `${process.env.PATH ?? ""}:/usr/bin:/usr/sbin` });
}
