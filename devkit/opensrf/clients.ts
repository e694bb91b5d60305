/**
 * The real OpenSRF clients, run as child processes: srfsh (C) and the Perl client
 * (OpenSRF::System / OpenSRF::AppSession).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCommand } from "../processes.ts";

/** What a client process did. */
export interface ClientRun {
  stdout: string;
  stderr: string;
  /** Exit code; srfsh exits 0 even when a request failed, so check its output. */
  code: number;
  /** True when it was killed for running past its timeout. */
  timedOut: boolean;
}

/** One `request` as srfsh printed it. */
export interface SrfshReply {
  /** Each `Received Data:` value, JSON-parsed (srfsh pretty-prints JSON; unparsable text is kept as a string). */
  data: unknown[];
  /** `Received Exception:` blocks: the status text and code, e.g. `Method [nosuch] not found for service S`, 404. */
  exceptions: Array<{ name: string; status: string; code: number }>;
  /** Saw `Request Completed Successfully` (srfsh prints it after exceptions too). */
  completed: boolean;
  /** Saw `Received no data from server`: nothing came back (timeout, bounce, unknown service). */
  noData: boolean;
}

/** What srfsh printed for a script, split per `request` command. */
export interface SrfshRun extends ClientRun {
  /** One entry per `request` in the script, in order. */
  replies: SrfshReply[];
  /** With `wire: true`: the messages srfsh sent and received, from its own debug log. */
  wire?: SrfshWire;
}

/**
 * The osrfMessage bodies a real srfsh exchanged, as its C library logs them at loglevel 4:
 * each received `<message>` after XML parsing (`osrf_stack.c`: "Transport handler received
 * new message from F to T with body …") and each sent payload (`osrf_app_session.c`: "sent N
 * bytes of data to T", "Sent: …").
 */
export interface SrfshWire {
  /** In arrival order; `body` is the JSON text exactly as it arrived. */
  received: Array<{ xid: string; from: string; to: string; body: string }>;
  /** In sending order; `to` is the router's class JID or, inside a session, the drone's. */
  sent: Array<{ xid: string; to: string; body: string }>;
}

/** Environment and files a client needs; {@link OpenSrfStack} supplies them. */
export interface ClientContext {
  /** Full environment for the child (PATH, LD_LIBRARY_PATH, PERL5LIB, HOME with .srfsh.xml). */
  env: Record<string, string>;
  /** Working directory (the stack's private dir). */
  cwd: string;
}

async function runProcess(cmd: string[], ctx: ClientContext, stdin: string, timeoutMs: number): Promise<ClientRun> {
  const { stdout, stderr, code, timedOut } = await runCommand(cmd, {
    cwd: ctx.cwd,
    env: ctx.env,
    inheritEnv: false,
    stdin: new TextEncoder().encode(stdin),
    timeoutMs,
  });
  return { stdout, stderr, code, timedOut };
}

/**
 * Runs the real srfsh non-interactively. srfsh has no `-c`: it treats a non-tty stdin (or a
 * file named as its argument) as a script, one command per line, and reads its bootstrap
 * config only from `$HOME/.srfsh.xml`. Each request waits up to srfsh's built-in 120 s, so
 * `timeoutMs` bounds the whole run.
 */
export async function runSrfsh(
  srfsh: string,
  commands: string[] | string,
  ctx: ClientContext,
  timeoutMs = 30_000,
): Promise<SrfshRun> {
  const script = `${Array.isArray(commands) ? commands.join("\n") : commands}\n`;
  // --safe: no `!shell` escapes, the script is only OpenSRF commands.
  const run = await runProcess([srfsh, "--safe"], ctx, script, timeoutMs);
  return { ...run, replies: parseSrfshOutput(run.stdout) };
}

/**
 * Splits srfsh output into per-request replies. srfsh echoes each script line after its
 * `srfsh# ` prompt, prints `\nReceived Data: <json>\n` per result, `\nReceived Exception:\n
 * Name: …\nStatus: <text>\nStatus: <code>\n` per error, then a dashed footer with
 * `Request Completed Successfully` and `Request Time in seconds: …`.
 */
export function parseSrfshOutput(stdout: string): SrfshReply[] {
  const replies: SrfshReply[] = [];
  // Each command starts after a prompt; the first chunk (before any prompt) is empty.
  for (const chunk of stdout.split(/^srfsh# /m).slice(1)) {
    if (!/^request\s/.test(chunk)) continue;
    const reply: SrfshReply = {
      data: [],
      exceptions: [],
      completed: /^Request Completed Successfully$/m.test(chunk),
      noData: /^Received no data from server$/m.test(chunk),
    };
    // A value ends at the newline before the next "\nReceived …" or the "\n-----" footer.
    const re =
      /\nReceived Data: ([\s\S]*?)\n(?=\n(?:Received |-{10,}))|\nReceived Exception:\nName: (.*)\nStatus: (.*)\nStatus: (\d+)/g;
    for (let m = re.exec(chunk); m; m = re.exec(chunk)) {
      if (m[1] !== undefined) {
        try {
          reply.data.push(JSON.parse(m[1]));
        } catch {
          reply.data.push(m[1]);
        }
      } else {
        reply.exceptions.push({ name: m[2] ?? "", status: m[3] ?? "", code: Number(m[4]) });
      }
    }
    replies.push(reply);
  }
  return replies;
}

// One log line per entry: "<app> <date> <time> [DEBG:<pid>:<file>:<line>:<xid>] <text>"; the C
// JSON encoder escapes control characters, so a body never holds a raw newline.
const RECEIVED_RE =
  /^\S+ \S+ \S+ \[DEBG:\d+:osrf_stack\.c:\d+:(\d*)\] Transport handler received new message \nfrom (\S+) to (\S+) with body \n\n([^\n]*)$/gm;
// osrfSendTransportPayload logs the recipient (INFO), then the payload (DEBG), one after the other.
const SENT_RE =
  /^\S+ \S+ \S+ \[INFO:\d+:osrf_app_session\.c:\d+:(\d*)\] \[[^\]\n]*\] sent \d+ bytes of data to (\S+)\n\S+ \S+ \S+ \[DEBG:\d+:osrf_app_session\.c:\d+:\d*\] Sent: ([^\n]*)$/gm;

/** Extracts {@link SrfshWire} from the text of a srfsh log written at loglevel 4 or more. */
export function parseSrfshWireLog(log: string): SrfshWire {
  const received = [...log.matchAll(RECEIVED_RE)].map((m) => ({
    xid: m[1] ?? "",
    from: m[2] ?? "",
    to: m[3] ?? "",
    body: m[4] ?? "",
  }));
  const sent = [...log.matchAll(SENT_RE)].map((m) => ({ xid: m[1] ?? "", to: m[2] ?? "", body: m[3] ?? "" }));
  return { received, sent };
}

/**
 * Runs a Perl script with the real OpenSRF Perl client loaded and bootstrapped:
 * `OpenSRF::System->bootstrap_client(config_file => <opensrf_core.xml>)` has run and
 * `OpenSRF::AppSession` is imported, so the script can go straight to
 * `OpenSRF::AppSession->create($service)->request($method, @params)->gather(1)`.
 * `JSON::XS` is loaded too (`print encode_json(...)` for results the test parses).
 */
export async function runPerlClient(
  script: string,
  ctx: ClientContext & { core: string; scratchDir: string },
  opts: { bootstrap?: boolean; timeoutMs?: number } = {},
): Promise<ClientRun> {
  const prelude = [
    "use strict; use warnings;",
    "use OpenSRF::System; use OpenSRF::AppSession; use JSON::XS;",
    "$| = 1;",
    opts.bootstrap === false ? "" : "OpenSRF::System->bootstrap_client(config_file => $ENV{OSRF_PEER_CORE});",
    "#line 1 script",
  ].join("\n");
  // A file rather than -e: Perl then names it in errors, and the script may be any size.
  const file = join(ctx.scratchDir, `client-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.pl`);
  writeFileSync(file, `${prelude}\n${script}\n`);
  return runProcess(
    ["perl", file],
    { ...ctx, env: { ...ctx.env, OSRF_PEER_CORE: ctx.core } },
    "",
    opts.timeoutMs ?? 30_000,
  );
}
