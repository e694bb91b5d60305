/**
 * Where a listener started without `--status-socket` serves its status: the socket of
 * `osrf-prefork start` in the pid dir when that directory is writable, else a per-user
 * runtime directory (`$XDG_RUNTIME_DIR/osrf-prefork`, else `<tmp>/osrf-prefork-<uid>`,
 * mode 0700). `osrf-prefork status` looks in the same places.
 */
import { createHash } from "node:crypto";
import { accessSync, constants, lstatSync, mkdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { statusSocketPath } from "./endpoint.ts";
import { StatusEndpointError } from "./errors.ts";

/** The per-user runtime directories, most preferred first. */
export function runtimeDirs(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): string[] {
  const out: string[] = [];
  if (env.XDG_RUNTIME_DIR) out.push(join(env.XDG_RUNTIME_DIR, "osrf-prefork"));
  out.push(join(tmpdir(), `osrf-prefork-${uid}`));
  return out;
}

/**
 * The socket of `service` in a runtime directory. Listeners of every opensrf.xml share the
 * directory, so the name carries a digest of the pid dir the socket stands in for: two
 * installs (or test runs) serving the same service never take each other's socket.
 */
export function runtimeSocketPath(runtimeDir: string, pidDir: string, service: string): string {
  const digest = createHash("sha256").update(resolve(pidDir)).digest("hex").slice(0, 12);
  return join(runtimeDir, `${service}.${digest}.status.sock`);
}

/** Every place a listener of `service` with this pid dir may have its default socket, in order. */
export function defaultSocketCandidates(pidDir: string, service: string, dirs = runtimeDirs()): string[] {
  return [statusSocketPath(resolve(pidDir), service), ...dirs.map((d) => runtimeSocketPath(d, pidDir, service))];
}

/** Why `dir` cannot hold our sockets, or undefined when it can. */
function unwritable(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return "not a directory";
    accessSync(dir, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
}

/** A runtime dir that exists but is not ours alone. */
class NotPrivateError extends StatusEndpointError {}

/**
 * Makes `dir` if needed and checks it is private: a directory (not a link), ours, with no
 * access for group or others — anyone else could otherwise plant or replace our socket.
 * @throws StatusEndpointError naming the directory and what to do.
 */
function privateDir(dir: string, service: string, uid: number): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EEXIST")
      throw new StatusEndpointError(`${dir} could not be made (${code ?? (e as Error).message})`, service);
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new NotPrivateError(
      `${dir} is not a private directory of uid ${uid} (a directory, mode 0700): remove it, or pass --status-socket PATH`,
      service,
    );
  }
}

/** Neither the pid dir nor any runtime dir can hold the default socket (e.g. a bare container). */
export class NoDefaultSocketError extends StatusEndpointError {}

/** Where the default socket goes, and why it is not in the pid dir when it is not. */
export interface DefaultSocket {
  path: string;
  /** Set when the pid dir could not be used: e.g. "/openils/var/run/opensrf: ENOENT". */
  fallback?: string;
}

/**
 * The default status socket of a listener: in the pid dir when it is a writable directory
 * (it is not created: that is the install's or `start`'s business), else in the first
 * usable runtime directory.
 * @throws NoDefaultSocketError when no runtime directory is usable either.
 */
export function defaultStatusSocket(
  pidDir: string,
  service: string,
  dirs = runtimeDirs(),
  uid = process.getuid?.() ?? 0,
): DefaultSocket {
  const abs = resolve(pidDir);
  const why = unwritable(abs);
  if (why === undefined) return { path: statusSocketPath(abs, service) };
  const problems: string[] = [];
  let planted = false;
  for (const dir of dirs) {
    try {
      privateDir(dir, service, uid);
      return { path: runtimeSocketPath(dir, abs, service), fallback: `${abs}: ${why}` };
    } catch (e) {
      problems.push((e as Error).message);
      planted ||= e instanceof NotPrivateError;
    }
  }
  // A runtime dir someone else could write to is worth more than the plain "nowhere".
  const Err = planted ? StatusEndpointError : NoDefaultSocketError;
  throw new Err(`pid dir ${abs} is not writable (${why}), and ${problems.join("; ")}`, service);
}
