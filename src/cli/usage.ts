/**
 * Printing `--help`: citty's text, with its colours only on a terminal. citty colours
 * whenever NO_COLOR is not exactly "1" (and neither CI, TEST nor TERM=dumb is set), pipes
 * included; here escapes go only to a TTY, and never when NO_COLOR is set to anything
 * (https://no-color.org).
 */
import { type ArgsDef, type CommandDef, renderUsage } from "citty";

// ESC [ … m: the SGR sequences citty writes.
const SGR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

/** Whether colour escapes may be written to `stream`. */
export function colourAllowed(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

/** `text` without colour escapes. */
export function plain(text: string): string {
  return text.replace(SGR, "");
}

/** citty's `showUsage`, honouring {@link colourAllowed} for stdout. */
export async function showUsage<T extends ArgsDef = ArgsDef>(
  cmd: CommandDef<T>,
  parent?: CommandDef<T>,
): Promise<void> {
  const text = await renderUsage(cmd, parent);
  await new Promise<void>((resolve) =>
    process.stdout.write(`${colourAllowed(process.stdout) ? text : plain(text)}\n\n`, () => resolve()),
  );
}
