/**
 * `--help` of every subcommand: through a pipe it holds no colour escapes and lists every
 * option; on a terminal it is coloured unless NO_COLOR is set (to anything, per
 * no-color.org; citty itself only honours "1").
 */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { cliCommand, runCli } from "../../devkit/processes.ts";
import { main } from "../../src/cli/main.ts";

const ESC = "\u001b[";
// What would make citty drop colours by itself, cleared so the test sees our decision.
const COLOUR_ENV = { CI: "", TEST: "", NO_COLOR: "", FORCE_COLOR: "", TERM: "xterm-256color" };
const SCRIPT = "/usr/bin/script";

interface Arg {
  type?: string;
}

async function subcommands(): Promise<Array<[string, Record<string, Arg>]>> {
  const subs = main.subCommands as Record<string, () => Promise<{ args?: Record<string, Arg> }>>;
  return Promise.all(Object.entries(subs).map(async ([name, load]) => [name, (await load()).args ?? {}] as const));
}

describe("--help", () => {
  test("of every subcommand, through a pipe: no escapes, every option listed", async () => {
    const all = await subcommands();
    expect(all.map(([n]) => n)).toContain("init");
    for (const [name, args] of all) {
      const r = await runCli([name, "--help"], { env: COLOUR_ENV });
      expect({ name, code: r.code, stderr: r.stderr }).toEqual({ name, code: 0, stderr: "" });
      expect({ name, escapes: r.stdout.includes(ESC) }).toEqual({ name, escapes: false });
      expect(r.stdout).toContain(`osrf-prefork ${name}`);
      for (const [arg, def] of Object.entries(args)) {
        expect({ name, listed: r.stdout.includes(def.type === "positional" ? arg.toUpperCase() : `--${arg}`) }).toEqual(
          {
            name,
            listed: true,
          },
        );
      }
    }
  }, 60_000);

  test("of the program lists every subcommand, without escapes", async () => {
    const r = await runCli(["--help"], { env: COLOUR_ENV });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain(ESC);
    for (const [name] of await subcommands()) expect(r.stdout).toContain(name);
  });

  test.skipIf(!existsSync(SCRIPT))(
    "on a terminal: coloured, unless NO_COLOR is set to anything",
    async () => {
      const onTty = async (noColor: string) => {
        const cmd = [...cliCommand(), "status", "--help"].map((a) => `'${a}'`).join(" ");
        const proc = Bun.spawn([SCRIPT, "-qec", cmd, "/dev/null"], {
          stdout: "pipe",
          stderr: "pipe",
          stdin: "ignore",
          env: { ...process.env, ...COLOUR_ENV, NO_COLOR: noColor },
        });
        const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
        expect(code).toBe(0);
        expect(out).toContain("--socket");
        return out;
      };
      expect(await onTty("")).toContain(ESC);
      expect(await onTty("yes")).not.toContain(ESC);
      expect(await onTty("1")).not.toContain(ESC);
    },
    30_000,
  );
});
