/**
 * The built real OpenSRF 3.3 stack (the "peer"): where its source tarball is, building it once
 * through build.sh (a cached no-op afterwards), and the environment its programs need.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const BUILD_SCRIPT = join(import.meta.dir, "build.sh");
/** The one default outside the repo: the tarball next to the checkout. */
const DEFAULT_REL = "../shared/opensrf/opensrf-3.3.0.tar.gz";

/** The env var naming the tarball. */
export const SOURCE_ENV = "OPENSRF_SRC";

/** An installed peer: a prefix holding bin/, lib/ and perl5/ of OpenSRF 3.3. */
export interface OpenSrfPeer {
  /** Install prefix (in the cache dir, outside the repo). */
  readonly prefix: string;
  /** The tarball it was built from. */
  readonly source: string;
  /** Absolute path of an installed program, e.g. `bin("srfsh")`. */
  bin(name: "srfsh" | "opensrf_router" | "opensrf-c" | "osrf_control"): string;
  /**
   * Environment for its programs on top of `process.env`: PATH (osrf_control finds
   * opensrf_router and opensrf-c there), LD_LIBRARY_PATH (libopensrf and the C services'
   * .so files are dlopen()ed by name) and PERL5LIB (the Perl modules live under the prefix).
   */
  readonly env: Record<string, string>;
}

/**
 * Where the tarball is: `$OPENSRF_SRC`, else `../shared/opensrf/opensrf-3.3.0.tar.gz` next to
 * the repo — in a linked git worktree, next to the main checkout (same rule as build.sh).
 */
export function peerSource(): { path: string; exists: boolean; fromEnv: boolean } {
  const env = process.env[SOURCE_ENV];
  if (env) {
    const path = resolve(env);
    return { path, exists: existsSync(path), fromEnv: true };
  }
  const path = resolve(ROOT, DEFAULT_REL);
  if (existsSync(path)) return { path, exists: true, fromEnv: false };
  const common = Bun.spawnSync(["git", "-C", ROOT, "rev-parse", "--path-format=absolute", "--git-common-dir"], {
    stdout: "pipe",
    stderr: "ignore",
  });
  const gitDir = common.success ? common.stdout.toString().trim() : "";
  if (gitDir) {
    const alt = resolve(dirname(gitDir), DEFAULT_REL);
    if (existsSync(alt)) return { path: alt, exists: true, fromEnv: false };
  }
  return { path, exists: false, fromEnv: false };
}

let printedSkip = false;

/**
 * For test files: true when the peer's source is there. Without it, prints ONE line saying the
 * tests are skipped and how to supply the source, and returns false — unless `CI` is set (CI
 * always has the tarball), where it throws so the run fails instead of silently skipping.
 *
 * ```ts
 * const HAVE_PEER = peerAvailableForTests("peer-smoke");
 * describe.skipIf(!HAVE_PEER)("real OpenSRF stack", () => { … });
 * ```
 */
export function peerAvailableForTests(what: string): boolean {
  const src = peerSource();
  if (src.exists) return true;
  const how = `${SOURCE_ENV}=path/to/opensrf-3.3.0.tar.gz`;
  const where = src.fromEnv ? `${SOURCE_ENV}=${src.path} does not exist` : `no tarball at ${src.path}`;
  if (process.env.CI) {
    throw new Error(`${what}: the real OpenSRF stack is required in CI but ${where}; set ${how}`);
  }
  if (!printedSkip) {
    printedSkip = true;
    console.log(`skipped ${what}: real OpenSRF 3.3 tests need its source (${where}); set ${how}`);
  }
  return false;
}

let building: Promise<OpenSrfPeer> | undefined;

/**
 * Builds the peer if the cache lacks it (apt packages, then ~30–70 s of autotools on 2 cores)
 * or just verifies the cache (well under a second), and returns it. build.sh's progress goes
 * to our stderr; a failure throws with the script's one-line diagnosis.
 */
export function ensurePeer(): Promise<OpenSrfPeer> {
  building ??= buildPeer().catch((err: unknown) => {
    building = undefined; // a later call may retry (e.g. after the user fixed apt)
    throw err;
  });
  return building;
}

async function buildPeer(): Promise<OpenSrfPeer> {
  const src = peerSource();
  if (!src.exists) throw new Error(`OpenSRF source tarball not found at ${src.path}; set ${SOURCE_ENV}`);
  const proc = Bun.spawn(["bash", BUILD_SCRIPT], {
    env: { ...process.env, [SOURCE_ENV]: src.path },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  // Progress is echoed as it comes (a cold build takes a while); the tail is kept for errors.
  let errTail = "";
  const pumpErr = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) {
      const text = dec.decode(chunk, { stream: true });
      process.stderr.write(text);
      errTail = (errTail + text).slice(-4000);
    }
  })();
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited, pumpErr]);
  if (code !== 0) {
    const reason = errTail
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("opensrf-build:"))
      .pop();
    throw new Error(`devkit/opensrf/build.sh failed (exit ${code}): ${reason ?? errTail.trim().slice(-500)}`);
  }
  const prefix = out.trim().split("\n").pop() ?? "";
  if (!prefix || !existsSync(join(prefix, "bin", "srfsh"))) {
    throw new Error(`devkit/opensrf/build.sh printed no usable prefix (got ${JSON.stringify(out.trim())})`);
  }
  return peerAt(prefix, src.path);
}

/** A peer at a known prefix (e.g. one built by hand with build.sh). */
export function peerAt(prefix: string, source = ""): OpenSrfPeer {
  const add = (dir: string, old: string | undefined) => (old ? `${dir}:${old}` : dir);
  return {
    prefix,
    source,
    bin: (name) => join(prefix, "bin", name),
    env: {
      PATH: add(join(prefix, "bin"), process.env.PATH),
      LD_LIBRARY_PATH: add(join(prefix, "lib"), process.env.LD_LIBRARY_PATH),
      PERL5LIB: add(join(prefix, "perl5", "lib", "perl5"), process.env.PERL5LIB),
    },
  };
}
