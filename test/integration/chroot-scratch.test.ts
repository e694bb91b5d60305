/**
 * The container image, without Docker: the files the Dockerfile's final (FROM scratch)
 * stage copies — read from its COPY lines, nothing added — go into an empty directory,
 * what every container runtime provides is mounted there (/proc, and a /dev holding the
 * OCI default devices — spawning drones needs /dev/null — and /dev/shm), and the image's ENTRYPOINT runs
 * under chroot as the image's USER: `version`, then a served request (XMPP server and
 * router outside, reached on 127.0.0.1; the app module and configs copied in, as volumes).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { type Bus, ensureLinuxBinary, startBus } from "../../devkit/bus.ts";

const ROOT = resolve(import.meta.dir, "../..");
const TIMEOUT = 60_000;
const IS_ROOT = process.getuid?.() === 0;
const CAN_RUN = IS_ROOT && process.platform === "linux" && process.arch === "x64";
/** Found outside: the jail gets an empty environment, as a scratch image has none. */
const CHROOT = Bun.which("chroot") ?? "/usr/sbin/chroot";

/** One file the final stage copies: where it comes from here, where it goes in the image. */
interface ImageFile {
  source: string;
  target: string;
}

interface FinalStage {
  files: ImageFile[];
  entrypoint: string[];
  user?: string;
}

/**
 * Reads the Dockerfile: the final stage's COPY lines (sources of `--from=<stage>` mapped
 * from that stage's WORKDIR to the repository, other absolute paths to this machine, which
 * runs the same Debian as the build stage), its ENTRYPOINT and USER.
 */
function readFinalStage(file: string): FinalStage {
  const lines = readFileSync(file, "utf8")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const stages: Array<{ name?: string; workdir: string; lines: string[] }> = [];
  for (const line of lines) {
    const [instr = "", ...rest] = line.split(/\s+/);
    if (instr.toUpperCase() === "FROM") {
      const as = rest.findIndex((w) => w.toUpperCase() === "AS");
      stages.push({ ...(as >= 0 ? { name: rest[as + 1] } : {}), workdir: "/", lines: [] });
    } else {
      const stage = stages.at(-1)!;
      if (instr.toUpperCase() === "WORKDIR") stage.workdir = resolve(stage.workdir, rest.join(" "));
      stage.lines.push(line);
    }
  }
  const final = stages.at(-1)!;
  const out: FinalStage = { files: [], entrypoint: [] };
  for (const line of final.lines) {
    const [instr = "", ...words] = line.split(/\s+/);
    switch (instr.toUpperCase()) {
      case "COPY": {
        const flags = words.filter((w) => w.startsWith("--"));
        const paths = words.filter((w) => !w.startsWith("--"));
        const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
        const stage = from === undefined ? undefined : stages.find((s) => s.name === from);
        if (from !== undefined && !stage) throw new Error(`COPY --from=${from}: not a stage of the Dockerfile`);
        const dest = paths.pop()!;
        for (const src of paths) {
          let source: string;
          if (!stage) source = resolve(ROOT, src);
          else {
            const abs = resolve(stage.workdir, src);
            // The build stage's WORKDIR holds the repository (build output included).
            source =
              stage.workdir !== "/" && abs.startsWith(`${stage.workdir}/`)
                ? join(ROOT, abs.slice(stage.workdir.length))
                : abs;
          }
          out.files.push({ source, target: dest.endsWith("/") ? join(dest, basename(src)) : dest });
        }
        break;
      }
      case "ENTRYPOINT":
        out.entrypoint = JSON.parse(words.join(" ")) as string[];
        break;
      case "USER":
        out.user = words[0];
        break;
    }
  }
  return out;
}

let bus: Bus;
let jail: string;
let stage: FinalStage;
const mounted: string[] = [];

/** The devices an OCI runtime creates in a container's /dev (major, minor). */
const OCI_DEVICES: Array<[string, number, number]> = [
  ["null", 1, 3],
  ["zero", 1, 5],
  ["full", 1, 7],
  ["random", 1, 8],
  ["urandom", 1, 9],
  ["tty", 5, 0],
];

function run(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr.toString()}`);
}
let serve: ReturnType<typeof Bun.spawn> | undefined;
let serveOutput = "";

function inJail(args: string[], timeoutMs = 30_000) {
  const cmd = [CHROOT, ...(stage.user ? [`--userspec=${stage.user}`] : []), jail, ...stage.entrypoint, ...args];
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", env: {}, timeout: timeoutMs });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe.skipIf(!CAN_RUN)(
  `image files under chroot${IS_ROOT ? "" : " (skipped: needs root for mount and chroot)"}`,
  () => {
    beforeAll(async () => {
      await ensureLinuxBinary();
      stage = readFinalStage(join(ROOT, "Dockerfile"));
      jail = mkdtempSync(join(tmpdir(), "osrf-scratch-"));
      // mkdtemp makes 0700; the image's root is world-readable.
      chmodSync(jail, 0o755);
      for (const f of stage.files) {
        if (!existsSync(f.source)) throw new Error(`Dockerfile copies ${f.source}, which is missing here`);
        mkdirSync(join(jail, dirname(f.target)), { recursive: true, mode: 0o755 });
        // Dereferences symlinks, as COPY of a file does.
        copyFileSync(f.source, join(jail, f.target));
      }
      mkdirSync(join(jail, "proc"), { mode: 0o555 });
      run(["mount", "-t", "proc", "proc", join(jail, "proc")]);
      mounted.push(join(jail, "proc"));
      mkdirSync(join(jail, "dev"), { mode: 0o755 });
      run(["mount", "-t", "tmpfs", "-o", "mode=755,size=64k", "tmpfs", join(jail, "dev")]);
      mounted.push(join(jail, "dev"));
      for (const [name, major, minor] of OCI_DEVICES)
        run(["mknod", "-m", "666", join(jail, "dev", name), "c", String(major), String(minor)]);
      // The runtime spec's default mounts include /dev/shm (where the listener's free-drone board goes).
      mkdirSync(join(jail, "dev/shm"), { mode: 0o1777 });
      run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=1m", "shm", join(jail, "dev/shm")]);
      mounted.push(join(jail, "dev/shm"));

      bus = await startBus();
      // What a container would get as volumes: the app and the configs.
      mkdirSync(join(jail, "apps/lib"), { recursive: true, mode: 0o755 });
      mkdirSync(join(jail, "config"), { mode: 0o755 });
      writeFileSync(join(jail, "apps/lib/twice.ts"), "export const twice = (n: number): number => n * 2;\n");
      writeFileSync(
        join(jail, "apps/jailed.ts"),
        `import { defineService } from "osrf-prefork";\nimport { twice } from "./lib/twice.ts";\n` +
          `export default defineService({ methods: [{ name: "twice", argc: 1, handler: (_ctx, n) => twice(Number(n)) }] });\n`,
      );
      copyFileSync(bus.coreFile, join(jail, "config/opensrf_core.xml"));
      writeFileSync(
        join(jail, "config/opensrf.xml"),
        `<opensrf><default><apps><test.jailed><unix_config><min_children>1</min_children><max_children>2</max_children></unix_config></test.jailed></apps></default></opensrf>\n`,
      );
    }, 120_000);

    afterAll(async () => {
      if (serve) {
        serve.kill("SIGTERM");
        const timer = setTimeout(() => serve?.kill("SIGKILL"), 10_000);
        await serve.exited;
        clearTimeout(timer);
      }
      await bus?.stop();
      for (const dir of mounted.reverse()) {
        if (Bun.spawnSync(["umount", dir]).exitCode !== 0) Bun.spawnSync(["umount", "-l", dir]);
      }
      // Never remove a tree that still has something mounted in it.
      if (
        jail &&
        Bun.spawnSync(["findmnt", "-rno", "TARGET"])
          .stdout.toString()
          .split("\n")
          .every((t) => !t.startsWith(jail))
      ) {
        rmSync(jail, { recursive: true, force: true });
      }
    }, TIMEOUT);

    test("the final stage copies the binary and the glibc files ldd lists, nothing else", () => {
      const targets = stage.files.map((f) => f.target).sort();
      expect(targets).toEqual([
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/x86_64-linux-gnu/libdl.so.2",
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/x86_64-linux-gnu/libpthread.so.0",
        "/lib64/ld-linux-x86-64.so.2",
        "/osrf-prefork",
      ]);
      const ldd = Bun.spawnSync(["ldd", join(ROOT, "dist/osrf-prefork-linux-x64")]).stdout.toString();
      const needed = [...ldd.matchAll(/^\s*(\S+\.so[.\d]*)/gm)]
        .map((m) => basename(m[1]!))
        .filter((n) => !n.startsWith("linux-vdso"));
      expect(needed.sort()).toEqual(
        targets
          .filter((t) => t !== "/osrf-prefork")
          .map((t) => basename(t))
          .sort(),
      );
    });

    test("version runs from the image's entrypoint", () => {
      const r = inJail(["version"]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^osrf-prefork \S+ \(bun \S+, linux-x64\)\n$/);
    });

    test(
      "serve in the jail answers a request, also made from the jail",
      async () => {
        const cmd = [
          CHROOT,
          ...(stage.user ? [`--userspec=${stage.user}`] : []),
          jail,
          ...stage.entrypoint,
          "serve",
          "--service",
          "test.jailed",
          "--app",
          "/apps/jailed.ts",
          "--config",
          "/config/opensrf_core.xml",
          "--settings",
          "/config/opensrf.xml",
          "--host",
          "jail",
          "--logfile",
          "stderr",
          "--loglevel",
          "3",
        ];
        serve = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: {} });
        void (async () => {
          for await (const chunk of serve.stderr as ReadableStream<Uint8Array>)
            serveOutput += new TextDecoder().decode(chunk);
        })();
        await Promise.race([
          bus.online("test.jailed", 30_000),
          serve.exited.then((c) => Promise.reject(new Error(`serve in the jail exited ${c}:\n${serveOutput}`))),
        ]);
        const answer = await bus.client
          .request("test.jailed", "twice", [21])
          .first()
          .catch((e: Error) => Promise.reject(new Error(`${e.message}\nserve output:\n${serveOutput.slice(-4000)}`)));
        expect(answer).toBe(42);
        const r = inJail(["request", "--config", "/config/opensrf_core.xml", "test.jailed", "twice", "4"]);
        expect(r.stderr).toBe("");
        expect(r.stdout).toBe("8\n");
        // Drones are the jailed binary, self-spawned.
        expect(serveOutput).not.toMatch(/ERR|cannot/);
      },
      TIMEOUT,
    );
  },
);
