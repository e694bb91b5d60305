/**
 * The author's path end to end: `osrf-prefork init` writes a project; the packaged
 * tarball installs into it with npm; its own `tsc --noEmit` and `bun test` pass (and a
 * broken method makes that test fail); the compiled binary serves it behind a router with
 * its own copy of the API, and `osrf-prefork request` calls it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { LINUX_BINARY as BIN, type Bus, ensureLinuxBinary, startBus } from "../../devkit/bus.ts";
import { CliProcess, runCli, runCommand } from "../../devkit/processes.ts";
import { buildPackage } from "../../scripts/build-package.ts";
import { VERSION } from "../../src/version.ts";

const ROOT = resolve(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const SERVICE = "test.shelf";
const HOST_OK = process.platform === "linux" && process.arch === "x64";

let dir: string;
let tarball: string;
let project: string;

/** Runs a command to completion in `cwd` (bounded), with its output. */
async function sh(cmd: string[], cwd: string, timeoutMs = 120_000) {
  const { code, stdout, stderr } = await runCommand(cmd, {
    cwd,
    env: { npm_config_update_notifier: "false" },
    timeoutMs,
  });
  return { code, stdout, stderr, output: stdout + stderr };
}

/**
 * npm install in the project: the tarball is local; @types/bun (the same pin as this
 * repository's) comes from npm's cache when this repository's own install put it there.
 */
function npmInstall() {
  return sh(["npm", "install", "--no-audit", "--no-fund", "--prefer-offline"], project);
}

/** The project initialised and installed, for tests run on their own (`-t`). */
async function installedProject(): Promise<void> {
  if (!existsSync(project)) {
    const r = await runCli(["init", project, "--name", SERVICE, "--package", tarball]);
    if (r.code !== 0) throw new Error(`init failed: ${r.stderr}`);
  }
  if (!existsSync(join(project, "node_modules/osrf-prefork"))) {
    const r = await npmInstall();
    if (r.code !== 0) throw new Error(`npm install failed: ${r.output}`);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "osrf-author-init-"));
  tarball = (await buildPackage(join(dir, "dist"))).tarball;
  project = join(dir, "shelf");
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("osrf-prefork init", () => {
  test("writes the project, with the tarball vendored as its osrf-prefork dependency", async () => {
    const r = await runCli(["init", project, "--name", SERVICE, "--package", tarball]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`created service ${SERVICE} in ${project}:`);
    for (const f of ["package.json", "tsconfig.json", "src/service.ts", "test/service.test.ts", "opensrf.xml"]) {
      expect(existsSync(join(project, f))).toBe(true);
    }
    const manifest = JSON.parse(readFileSync(join(project, "package.json"), "utf8"));
    expect(manifest.devDependencies).toEqual({
      "@types/bun": Bun.version,
      "osrf-prefork": `file:vendor/osrf-prefork-${VERSION}.tgz`,
    });
    expect(manifest.dependencies).toBeUndefined();
    expect(readFileSync(join(project, `vendor/osrf-prefork-${VERSION}.tgz`))).toEqual(readFileSync(tarball));
    const tsconfig = readFileSync(join(project, "tsconfig.json"), "utf8");
    expect(tsconfig).not.toContain("paths");
    expect(readFileSync(join(project, "opensrf.xml"), "utf8")).toContain(
      `<implementation>src/service.ts</implementation>`,
    );
  });

  test("refuses a non-empty directory unless --force, and a name opensrf.xml cannot hold", async () => {
    const again = await runCli(["init", project, "--name", SERVICE]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^osrf-prefork: init: .* is not empty \(\d+ entries\); .*pass --force/);
    const other = join(dir, "other");
    mkdirSync(other);
    writeFileSync(join(other, "keep.txt"), "mine");
    const forced = await runCli(["init", other, "--force", "--package", "0.1.0"]);
    expect(forced.code).toBe(0);
    expect(readFileSync(join(other, "keep.txt"), "utf8")).toBe("mine");
    expect(JSON.parse(readFileSync(join(other, "package.json"), "utf8")).devDependencies["osrf-prefork"]).toBe("0.1.0");
    const bad = await runCli(["init", join(dir, "bad"), "--name", "no spaces"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"no spaces" cannot be a service name');
  });

  test("npm installs the tarball; the project's tsc --noEmit and bun test pass", async () => {
    const install = await npmInstall();
    expect(install.output).not.toContain("ERR!");
    expect(install.code).toBe(0);
    const installed = JSON.parse(readFileSync(join(project, "node_modules/osrf-prefork/package.json"), "utf8"));
    expect(installed.version).toBe(VERSION);

    const tsc = await sh([process.execPath, TSC, "--noEmit", "-p", project], project);
    expect(tsc.output).toBe("");
    expect(tsc.code).toBe(0);
    // Our declarations are clean too, not only skipped.
    const strict = await sh([process.execPath, TSC, "--noEmit", "--skipLibCheck", "false", "-p", project], project);
    expect(strict.output).toBe("");

    const tests = await sh([BUN, "test"], project);
    expect(tests.code).toBe(0);
    expect(tests.output).toMatch(/\b6 pass\b/);
    expect(tests.output).toMatch(/\b0 fail\b/);
  }, 180_000);

  test("a broken method makes the project's test fail, and tsc still catches type errors", async () => {
    const file = join(project, "src/service.ts");
    const good = readFileSync(file, "utf8");
    try {
      expect(good).toContain("return a + b;");
      writeFileSync(file, good.replace("return a + b;", "return a - b;"));
      const tests = await sh([BUN, "test"], project);
      expect(tests.code).not.toBe(0);
      expect(tests.output).toContain("(fail) add: one result");

      writeFileSync(file, good.replace("return a + b;", "return a.toUpperCase() + b;"));
      const tsc = await sh([process.execPath, TSC, "--noEmit", "-p", project], project);
      expect(tsc.code).not.toBe(0);
      expect(tsc.output).toContain("src/service.ts");
    } finally {
      writeFileSync(file, good);
    }
  }, 120_000);
});

describe.skipIf(!HOST_OK)("the compiled binary serves the project", () => {
  let bus: Bus;
  let serve: CliProcess | undefined;
  let savedBin: string | undefined;

  beforeAll(async () => {
    await Promise.all([ensureLinuxBinary(), installedProject()]);
    savedBin = process.env.OSRF_PREFORK_BIN;
    process.env.OSRF_PREFORK_BIN = BIN;
    bus = await startBus();
  }, 180_000);

  afterAll(async () => {
    if (serve) await serve.stop("SIGTERM");
    await bus?.stop();
    if (savedBin === undefined) delete process.env.OSRF_PREFORK_BIN;
    else process.env.OSRF_PREFORK_BIN = savedBin;
  }, 60_000);

  test("behind a router, with the binary's own osrf-prefork (a MethodException keeps its 400)", async () => {
    expect(existsSync(join(project, "node_modules/osrf-prefork"))).toBe(true);
    serve = CliProcess.start([
      "serve",
      "--service",
      SERVICE,
      "--app",
      join(project, "src/service.ts"),
      "--settings",
      join(project, "opensrf.xml"),
      "--host",
      "localhost",
      "--config",
      bus.coreFile,
      "--logfile",
      "stderr",
      "--loglevel",
      "3",
    ]);
    await serve.untilReady(bus.online(SERVICE));
    const req = (...args: string[]) => runCli(["request", "--config", bus.coreFile, ...args]);

    const add = await req(SERVICE, `${SERVICE}.add`, "2", "3");
    expect([add.code, add.stdout, add.stderr]).toEqual([0, "5\n", ""]);
    const atomic = await req(SERVICE, `${SERVICE}.count.atomic`, "3");
    expect(atomic.stdout).toBe("[1,2,3]\n");
    const tally = await req("--connect", SERVICE, `${SERVICE}.tally.add`, "5");
    expect(tally.stdout).toBe("5\n");
    // Were the module's MethodException the packaged copy, the server would see a plain
    // throw and answer 500.
    const refused = await req(SERVICE, `${SERVICE}.add`, '"two"', "3");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`400: ${SERVICE}.add: a and b must be numbers`);
  }, 60_000);
});
