/**
 * Writing a new service project (`osrf-prefork init DIR`): checks the directory and the
 * service name, finds the osrf-prefork package to depend on, writes the files.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { VERSION } from "../version.ts";
import { scaffoldFiles } from "./templates.ts";

/** A project that cannot be written as asked; the message names the problem and the fix. */
export class ScaffoldError extends Error {
  constructor(
    message: string,
    readonly dir: string,
  ) {
    super(message);
    this.name = "ScaffoldError";
  }
}

/** What {@link createProject} needs. */
export interface ProjectOptions {
  /** The project directory (created if missing). */
  dir: string;
  /** The service name; default the directory's name. */
  name?: string;
  /**
   * The osrf-prefork package: a `.tgz` path (copied into the project's vendor/) or any npm
   * version spec. Default: osrf-prefork-<version>.tgz next to the binary, else the version.
   */
  package?: string;
  /** Write into a non-empty directory, replacing files of the same names. */
  force?: boolean;
  /** Where to look for the default tarball (tests); default next to the binary, then dist/. */
  tarballDirs?: readonly string[];
}

/** A written project. */
export interface CreatedProject {
  dir: string;
  service: string;
  /** The dependency spec written for "osrf-prefork". */
  osrfPrefork: string;
  /** Files written, relative to `dir`. */
  files: string[];
  /** Something the author should know (e.g. no tarball was found). */
  note?: string;
}

/** Service names as opensrf.xml can hold them (an element under `<apps>`). */
const SERVICE_NAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;

/** The tarball the build writes: `osrf-prefork-<version>.tgz`. */
export const TARBALL = `osrf-prefork-${VERSION}.tgz`;

/**
 * Directories that may hold the tarball of this version: the binary's own directory (a
 * release ships the two side by side), then the dist/ of a source checkout.
 */
export function defaultTarballDirs(): string[] {
  return [dirname(process.execPath), resolve(import.meta.dir, "../../dist")];
}

function checkName(name: string, dir: string, given: boolean): void {
  if (SERVICE_NAME.test(name)) return;
  const fix = given
    ? "use letters, digits, '.', '-' and '_', starting with a letter, e.g. --name my.service"
    : "pass --name, e.g. --name my.service";
  throw new ScaffoldError(`"${name}" cannot be a service name (it is an element of opensrf.xml): ${fix}`, dir);
}

function checkDir(dir: string, force: boolean): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new ScaffoldError(`${dir} exists and is not a directory`, dir);
  const entries = readdirSync(dir);
  if (entries.length > 0 && !force) {
    throw new ScaffoldError(
      `${dir} is not empty (${entries.length} entr${entries.length === 1 ? "y" : "ies"}); choose a new directory, ` +
        "or pass --force to write the project's files into it",
      dir,
    );
  }
}

/** The dependency spec, and the tarball to copy into `<dir>/vendor/` when there is one. */
function dependency(o: ProjectOptions, dir: string): { spec: string; tarball?: string; note?: string } {
  if (o.package !== undefined && !o.package.endsWith(".tgz")) return { spec: o.package };
  let tarball: string | undefined;
  if (o.package !== undefined) {
    tarball = resolve(o.package);
    if (!existsSync(tarball)) {
      throw new ScaffoldError(`--package ${o.package}: no such file (build it with \`bun run build.ts package\`)`, dir);
    }
  } else {
    const dirs = o.tarballDirs ?? defaultTarballDirs();
    tarball = dirs.map((d) => join(d, TARBALL)).find((f) => existsSync(f));
    if (tarball === undefined) {
      return {
        spec: VERSION,
        note:
          `no ${TARBALL} next to the binary, so package.json asks the npm registry for osrf-prefork@${VERSION}; ` +
          "pass --package PATH.tgz to use the tarball that came with the binary",
      };
    }
  }
  return { spec: `file:vendor/${basename(tarball)}`, tarball };
}

/**
 * Writes the project.
 * @throws ScaffoldError for a non-empty directory (without `force`), a bad service name or
 *   a missing tarball.
 */
export function createProject(o: ProjectOptions): CreatedProject {
  const dir = resolve(o.dir);
  const service = o.name ?? basename(dir);
  checkName(service, dir, o.name !== undefined);
  checkDir(dir, o.force ?? false);
  const dep = dependency(o, dir);
  const files = scaffoldFiles({
    service,
    packageName: service.toLowerCase().replace(/^[._]+/, "") || "service",
    osrfPrefork: dep.spec,
    bunTypes: Bun.version,
  });
  const written: string[] = [];
  for (const f of files) {
    mkdirSync(dirname(join(dir, f.path)), { recursive: true });
    writeFileSync(join(dir, f.path), f.text);
    written.push(f.path);
  }
  if (dep.tarball !== undefined) {
    const vendored = join("vendor", basename(dep.tarball));
    mkdirSync(join(dir, "vendor"), { recursive: true });
    // `--force --package vendor/x.tgz` in an existing project names the file already there.
    if (resolve(dep.tarball) !== join(dir, vendored)) copyFileSync(dep.tarball, join(dir, vendored));
    written.push(vendored);
  }
  return { dir, service, osrfPrefork: dep.spec, files: written, ...(dep.note ? { note: dep.note } : {}) };
}
