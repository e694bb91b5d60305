/**
 * The one error type every config reader throws.
 */

/** What a {@link ConfigError} is built from. */
export interface ConfigErrorInit {
  /** The file the bad setting came from (or another source name, e.g. "settings server"). */
  file: string;
  /**
   * Element or settings path, e.g. `/config/opensrf/domain` or
   * `/apps/opensrf.math/unix_config/min_children`; "" for file-level problems.
   */
  path: string;
  /** What is wrong, e.g. "missing required element". */
  problem: string;
  /** What a valid value looks like, including an example where that helps. */
  expected: string;
  /** How to fix it, when the expectation alone does not say. */
  fix?: string;
}

/**
 * A configuration problem an operator must fix. The message is always one line:
 * `FILE: PATH: PROBLEM (expected EXPECTED[; FIX])`, e.g.
 * `opensrf_core.xml: /config/opensrf/domain: missing required element (expected the XMPP
 * domain, e.g. <domain>localhost</domain>)`.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  /** The file (or source) the problem is in. */
  readonly file: string;
  /** Element or settings path; "" for file-level problems (unreadable, malformed). */
  readonly path: string;
  /** What a valid value looks like. */
  readonly expected: string;
  /** What is wrong. */
  readonly problem: string;

  constructor(init: ConfigErrorInit) {
    super(formatMessage(init));
    this.file = init.file;
    this.path = init.path;
    this.expected = init.expected;
    this.problem = init.problem;
  }
}

/** Collapses newlines so a message can never span several log lines. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

function formatMessage(init: ConfigErrorInit): string {
  const head = init.path ? `${init.file}: ${init.path}: ${init.problem}` : fileLevelHead(init);
  const tail = init.fix ? `${init.expected}; ${init.fix}` : init.expected;
  return oneLine(`${head} (expected ${tail})`);
}

function fileLevelHead(init: ConfigErrorInit): string {
  // File-level problems usually name the file themselves ("cannot read X: ...").
  return init.problem.includes(init.file) ? init.problem : `${init.file}: ${init.problem}`;
}

/** A ConfigError for a file that cannot be read, keeping the system error code. */
export function unreadableFileError(file: string, cause: unknown): ConfigError {
  const err = cause as NodeJS.ErrnoException | undefined;
  // Node-style messages end with ", open 'FILE'"; the file is already named.
  const reason = (err?.message ?? String(cause)).replace(/, \w+ '[^']*'$/, "");
  const withCode = err?.code && !reason.startsWith(err.code) ? `${err.code}: ${reason}` : reason;
  const error = new ConfigError({
    file,
    path: "",
    problem: `cannot read ${file}: ${withCode}`,
    expected: "a readable XML file",
    fix: "check the path and its permissions",
  });
  error.cause = cause;
  return error;
}
