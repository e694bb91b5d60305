/** The `--name=value` options of the bench scripts, read from the command line. */

/** The value of `--name=…` (everything after the first `=`), or `fallback` when it is not given. */
export function opt(name: string, fallback: string): string {
  const prefix = `--${name}=`;
  return process.argv.find((a) => a.startsWith(prefix))?.slice(prefix.length) ?? fallback;
}
