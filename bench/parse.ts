/**
 * XML parse throughput: our tokenizer (src/xmpp/xml-tokenizer.ts) against ltx's, the one @xmpp/client
 * ships with. Three levels — tokenizer events only, stream elements as @xmpp/client builds
 * them, and a whole `parseStanza` — on a 1.3 KB OpenSRF message as ejabberd delivers it,
 * and one 1 MB message arriving in 64 KB socket chunks.
 *
 *   bun bench/parse.ts [--quick]
 */
import { Parser as LtxStreamParser } from "@xmpp/xml";
import parse from "ltx/lib/parse.js";
import { encodeBody } from "../src/protocol/codec.ts";
import { request } from "../src/protocol/messages.ts";
import { decodeStanza, encodeStanza, parseStanza } from "../src/xmpp/stanza.ts";
import { StreamParser } from "../src/xmpp/stream-parser.ts";
import { XmlTokenizer } from "../src/xmpp/xml-tokenizer.ts";

interface Sax {
  write(s: string): void;
  end(s?: string): void;
  on(ev: string, fn: (...args: never[]) => void): unknown;
}
const ltxModule = "ltx/lib/parsers/ltx.js";
const { default: LtxSax } = (await import(ltxModule)) as { default: new () => Sax };

/** One result row. */
export interface ParseResult {
  case: string;
  ours: number;
  ltx: number | undefined;
  unit: "msgs/s" | "ms";
  note?: string;
}

/** An OpenSRF message of about `bytes` as ejabberd delivers it: single quotes, `&quot;` in the body. */
export function deliveredStanza(bytes: number): string {
  const filler = "x".repeat(Math.max(0, bytes - 700));
  const body = encodeBody([
    request(1, "opensrf.system.echo", ["hello", 42, { a: [1, 2, 3], b: "é", c: filler }], {
      locale: "en-US",
      apiLevel: 1,
    }),
  ]);
  const c = encodeStanza({
    to: "opensrf@localhost/opensrf.math_listener_vm_1795547578.318649_28589",
    from: "router@localhost/opensrf.math",
    thread: "1795547651.059807.179554765128979",
    body,
    routerFrom: "opensrf@localhost/_vm_1795547651.056703_28979",
    routerTo: "",
    routerClass: "",
    routerCommand: "",
    xid: "1795547651289791",
  });
  return c
    .replace(/<message /, "<message xml:lang='en' ")
    .replace(/="([^"]*)"/g, "='$1'")
    .replace(/<body>(.*)<\/body>/s, (_m, b: string) => `<body>${b.replaceAll('"', "&quot;")}</body>`);
}

const STREAM_HEAD = `<?xml version='1.0'?><stream:stream id='1' xml:lang='en' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' xmlns='jabber:client'>`;

function rate(fn: () => void, ms: number): number {
  for (let i = 0; i < 200; i++) fn(); // warm up the JIT
  let n = 0;
  const end = performance.now() + ms;
  const started = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
  }
  return n / ((performance.now() - started) / 1000);
}

/** The fastest of `runs` runs of `fn`, in ms. */
export function best(fn: () => void, runs: number): number {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    min = Math.min(min, performance.now() - t);
  }
  return min;
}

function tokenize(Sax: new () => Sax, chunks: string[]): void {
  const s = new Sax();
  s.on("startElement", () => {});
  s.on("endElement", () => {});
  // Read the whole text, as any real consumer (JSON.parse of a body) would: a lazily
  // concatenated string is flattened here, not left unpaid.
  s.on("text", (t: string) => void t.indexOf("\u0000"));
  for (const c of chunks) s.write(c);
  s.end();
}

function chunked(doc: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < doc.length; i += size) out.push(doc.slice(i, i + size));
  return out;
}

/** Runs the parse benchmarks; `ms` is the time per small-message case. */
export function runParseBench(ms = 1000): ParseResult[] {
  const msg = deliveredStanza(1300);
  const out: ParseResult[] = [];

  out.push({
    case: "tokenize 1.3 KB",
    ours: rate(() => tokenize(XmlTokenizer, [msg]), ms),
    ltx: rate(() => tokenize(LtxSax, [msg]), ms),
    unit: "msgs/s",
  });

  // Stream mode: one parser, stanza after stanza, as @xmpp/client runs it.
  const streamRate = (P: new () => LtxStreamParser): number => {
    const p = new P();
    let got = 0;
    p.on("element", () => void got++);
    p.write(STREAM_HEAD);
    return rate(() => p.write(msg), ms);
  };
  out.push({
    case: "stream elements 1.3 KB",
    ours: streamRate(StreamParser),
    ltx: streamRate(LtxStreamParser),
    unit: "msgs/s",
  });

  out.push({
    case: "parseStanza 1.3 KB",
    ours: rate(() => parseStanza(msg), ms),
    ltx: rate(() => decodeStanza(parse(msg, { Parser: LtxSax })), ms),
    unit: "msgs/s",
    note: "ltx column: same decode on ltx's tree (no character checks)",
  });

  const big = deliveredStanza(1024 * 1024);
  const bigChunks = chunked(big, 65_536);
  const oursBig = best(() => tokenize(XmlTokenizer, bigChunks), 5);
  out.push({
    case: "tokenize 1 MB in 64 KB chunks",
    ours: oursBig,
    // One run: ltx steps through a chunk without '<' one character at a time, searching the
    // rest of the chunk at each step, so its cost is quadratic in the chunk size.
    ltx: best(() => tokenize(LtxSax, bigChunks), 1),
    unit: "ms",
  });
  out.push({
    case: "tokenize 1 MB, one chunk",
    ours: best(() => tokenize(XmlTokenizer, [big]), 5),
    ltx: best(() => tokenize(LtxSax, [big]), 5),
    unit: "ms",
  });
  out.push({
    case: "stream element 1 MB in 64 KB chunks",
    ours: best(() => {
      const p = new StreamParser();
      p.on("element", (el: { getChildText(n: string): string | null }) => void el.getChildText("body")?.charCodeAt(0));
      p.write(STREAM_HEAD);
      for (const c of bigChunks) p.write(c);
    }, 5),
    ltx: undefined,
    unit: "ms",
  });
  return out;
}

/** The results as a table. */
export function formatParseResults(rows: ParseResult[]): string {
  const fmt = (v: number | undefined, unit: string) =>
    v === undefined
      ? "—"
      : unit === "ms"
        ? `${v.toFixed(v < 10 ? 2 : 0)} ms`
        : `${Math.round(v).toLocaleString("en-US")}/s`;
  const lines = ["| case | ours | ltx | ours vs ltx |", "|---|---:|---:|---:|"];
  for (const r of rows) {
    const speedup =
      r.ltx === undefined
        ? "—"
        : r.unit === "ms"
          ? `${(r.ltx / r.ours).toFixed(1)}× faster`
          : `${(r.ours / r.ltx).toFixed(2)}×`;
    lines.push(`| ${r.case} | ${fmt(r.ours, r.unit)} | ${fmt(r.ltx, r.unit)} | ${speedup} |`);
  }
  const notes = rows.filter((r) => r.note).map((r) => `- ${r.case}: ${r.note}`);
  return [...lines, ...(notes.length ? ["", ...notes] : [])].join("\n");
}

if (import.meta.main) {
  const quick = process.argv.includes("--quick");
  process.stdout.write(`${formatParseResults(runParseBench(quick ? 300 : 1000))}\n`);
}
