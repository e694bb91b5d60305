/**
 * The built real OpenSRF stack (the "peer") of a release — 3.3 (XMPP) or main (Redis): where its
 * source tarball is, building it once through build.sh (a cached no-op afterwards), and the
 * environment its programs need.
 */
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const BUILD_SCRIPT = join(import.meta.dir, "build.sh");

/** Which OpenSRF: the 3.3 release (XMPP, what sites run) or the main branch (Redis). */
export type PeerRelease = "3.3" | "main";

/** Per release: the env var naming the tarball, and the one default outside the repo (next to the checkout). */
const SOURCES: Record<PeerRelease, { env: string; rel: string }> = {
  "3.3": { env: "OPENSRF_SRC", rel: "../shared/opensrf/opensrf-3.3.0.tar.gz" },
  main: { env: "OPENSRF_MAIN_SRC", rel: "../shared/opensrf/opensrf-main-81831b2.tar.gz" },
};

/** The env var naming the 3.3 tarball. */
export const SOURCE_ENV = SOURCES["3.3"].env;

/** An installed peer: a prefix holding bin/, lib/ and perl5/ of OpenSRF 3.3 or main. */
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
 * Where the tarball is: `$OPENSRF_SRC` (main: `$OPENSRF_MAIN_SRC`), else
 * `../shared/opensrf/opensrf-3.3.0.tar.gz` (main: `opensrf-main-81831b2.tar.gz`) next to the
 * repo — in a linked git worktree, next to the main checkout (same rule as build.sh).
 */
export function peerSource(release: PeerRelease = "3.3"): { path: string; exists: boolean; fromEnv: boolean } {
  const DEFAULT_REL = SOURCES[release].rel;
  const env = process.env[SOURCES[release].env];
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

const printedSkip = new Set<PeerRelease>();

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
export function peerAvailableForTests(what: string, release: PeerRelease = "3.3"): boolean {
  const src = peerSource(release);
  if (src.exists) return true;
  const envName = SOURCES[release].env;
  const how = `${envName}=path/to/${basename(SOURCES[release].rel)}`;
  const where = src.fromEnv ? `${envName}=${src.path} does not exist` : `no tarball at ${src.path}`;
  if (process.env.CI) {
    throw new Error(`${what}: the real OpenSRF ${release} stack is required in CI but ${where}; set ${how}`);
  }
  if (!printedSkip.has(release)) {
    printedSkip.add(release);
    console.log(`skipped ${what}: real OpenSRF ${release} tests need its source (${where}); set ${how}`);
  }
  return false;
}

const building = new Map<PeerRelease, Promise<OpenSrfPeer>>();

/**
 * Builds the peer if the cache lacks it (apt packages, then ~30–70 s of autotools on 2 cores)
 * or just verifies the cache (well under a second), and returns it. build.sh's progress goes
 * to our stderr; a failure throws with the script's one-line diagnosis.
 */
export function ensurePeer(release: PeerRelease = "3.3"): Promise<OpenSrfPeer> {
  let b = building.get(release);
  if (!b) {
    b = buildPeer(release).catch((err: unknown) => {
      building.delete(release); // a later call may retry (e.g. after the user fixed apt)
      throw err;
    });
    building.set(release, b);
  }
  return b;
}

async function buildPeer(release: PeerRelease): Promise<OpenSrfPeer> {
  const src = peerSource(release);
  const envName = SOURCES[release].env;
  if (!src.exists) throw new Error(`OpenSRF ${release} source tarball not found at ${src.path}; set ${envName}`);
  const proc = Bun.spawn(["bash", BUILD_SCRIPT, "--release", release], {
    env: { ...process.env, [envName]: src.path },
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
