import { relative } from "node:path";
import { defineCommand } from "citty";
import { createProject, ScaffoldError, TARBALL } from "../scaffold/scaffold.ts";
import { ExitCode, fail } from "./exit-codes.ts";

export default defineCommand({
  meta: {
    name: "init",
    description:
      "Create a service project in DIR: package.json, tsconfig.json, src/service.ts, a test using osrf-prefork/testing, opensrf.xml and a README",
  },
  args: {
    dir: { type: "positional", description: "Directory of the new project (created if missing)", required: true },
    name: { type: "string", description: "Service name, e.g. open-ils.shelf (default: the directory's name)" },
    package: {
      type: "string",
      description: `The osrf-prefork package: a .tgz (copied into vendor/) or an npm version (default: ${TARBALL} next to the binary, else the version)`,
    },
    force: {
      type: "boolean",
      description: "Write into a non-empty DIR, replacing files of the same names",
      default: false,
    },
  },
  run({ args }) {
    let created: ReturnType<typeof createProject>;
    try {
      created = createProject({
        dir: args.dir,
        force: args.force,
        ...(args.name !== undefined ? { name: args.name } : {}),
        ...(args.package !== undefined ? { package: args.package } : {}),
      });
    } catch (e) {
      if (e instanceof ScaffoldError) fail(`init: ${e.message}`, ExitCode.USAGE);
      throw e;
    }
    const rel = relative(process.cwd(), created.dir);
    const where = rel === "" ? "." : rel.startsWith("..") ? created.dir : rel;
    const lines = [
      `created service ${created.service} in ${where}:`,
      ...created.files.map((f) => `  ${f}`),
      `osrf-prefork dependency: ${created.osrfPrefork}`,
      "",
      "next:",
      `  cd ${where}`,
      "  npm install",
      "  bun test",
      "  npx tsc --noEmit",
      `  osrf-prefork serve --service ${created.service} --app src/service.ts --settings opensrf.xml`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    if (created.note) process.stderr.write(`osrf-prefork: init: note: ${created.note}\n`);
  },
});
