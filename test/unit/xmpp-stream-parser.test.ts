/**
 * What StreamParser (src/xmpp/stream-parser.ts) takes from @xmpp/xml and @xmpp/client that is
 * not their public API, checked on the installed versions: the Parser members it reaches
 * through a cast, and @xmpp/client building its parser from a replaceable `Parser`. When an
 * upgrade removes one, these tests name it and the version, instead of the connection
 * silently parsing with ltx again or failing on the first stanza.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { client } from "@xmpp/client";
import { Parser, type XmlElement } from "@xmpp/xml";
import { PARSER_INTERNALS, StreamParser, useStreamParser } from "../../src/xmpp/stream-parser.ts";
import { XmlTokenizer } from "../../src/xmpp/xml-tokenizer.ts";

const ROOT = new URL("../../", import.meta.url);
const installed = (pkg: string): string =>
  (JSON.parse(readFileSync(new URL(`node_modules/${pkg}/package.json`, ROOT), "utf8")) as { version: string }).version;
const lock = JSON.parse(readFileSync(new URL("package-lock.json", ROOT), "utf8")) as {
  packages: Record<string, { version?: string }>;
};
const pinned = (pkg: string): string | undefined => lock.packages[`node_modules/${pkg}`]?.version;
const XML_VERSION = `@xmpp/xml ${installed("@xmpp/xml")} (package-lock.json pins ${pinned("@xmpp/xml")})`;

/** Why each member is missing or of the wrong kind on `parser`; empty when all are there. */
function missingInternals(parser: object): string[] {
  const problems: string[] = [];
  for (const [name, kind] of Object.entries(PARSER_INTERNALS)) {
    const value = (parser as Record<string, unknown>)[name];
    if (kind === "method" && typeof value !== "function") problems.push(`${name}() is not a method`);
    if (kind === "field" && !Object.hasOwn(parser, name)) problems.push(`${name} is not a field`);
  }
  return problems;
}

describe(`the @xmpp/xml internals StreamParser relies on`, () => {
  test("the installed @xmpp/xml and @xmpp/client are the versions package-lock.json pins", () => {
    expect(installed("@xmpp/xml")).toBe(pinned("@xmpp/xml")!);
    expect(installed("@xmpp/client")).toBe(pinned("@xmpp/client")!);
  });

  test(`Parser has ${Object.keys(PARSER_INTERNALS).join(", ")}`, () => {
    const problems = missingInternals(new Parser());
    if (problems.length > 0) {
      throw new Error(
        `${XML_VERSION}: StreamParser reaches into Parser for members that are gone: ${problems.join("; ")}. ` +
          "Adapt src/xmpp/stream-parser.ts (ParserInternals) to this version.",
      );
    }
    // The check itself finds what is missing.
    expect(missingInternals({ root: null, onText() {} })).toEqual([
      "parser is not a field",
      "cursor is not a field",
      "onStartElement() is not a method",
      "onEndElement() is not a method",
      "emit() is not a method",
    ]);
    const fresh = new Parser() as unknown as { root: unknown; cursor: unknown; parser: { write?: unknown } };
    expect(fresh.root).toBeNull();
    expect(fresh.cursor).toBeNull();
    expect(typeof fresh.parser.write).toBe("function");
  });

  test("write() feeds the tokenizer in `parser`, so replacing it replaces ltx's", () => {
    const p = new StreamParser();
    const internals = p as unknown as { parser: unknown };
    expect(internals.parser).toBeInstanceOf(XmlTokenizer);
    // A DTD: ltx's tokenizer skips it, ours refuses it; the error proves ours read the input.
    const errors: Error[] = [];
    p.on("error", (e) => void errors.push(e));
    p.write("<!DOCTYPE x>");
    expect(errors.map((e) => e.message)).toEqual(["<!D…: document type declarations are not allowed in XMPP"]);
  });

  test("@xmpp/client's TCP transport uses @xmpp/xml's Parser, so StreamParser is a drop-in for it", () => {
    const xmpp = client({ service: "xmpp://127.0.0.1:9", domain: "localhost" }) as unknown as {
      _findTransport(service: string): { prototype: { Parser: unknown } } | undefined;
    };
    const transportParser = xmpp._findTransport("xmpp://127.0.0.1:9")?.prototype.Parser;
    if (transportParser !== Parser) {
      throw new Error(
        `@xmpp/client ${installed("@xmpp/client")} with ${XML_VERSION}: the xmpp:// transport's Parser is not ` +
          "@xmpp/xml's Parser, so a StreamParser may not be a drop-in for it (src/xmpp/stream-parser.ts).",
      );
    }
  });
});

describe("StreamParser on a whole stream, end to end", () => {
  const HEAD =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>";
  const STANZA =
    "<message to='a@localhost/r' from='b@localhost/r'><thread>t1</thread><body>[&quot;x&quot;]</body></message>";
  const stream = `${HEAD} ${STANZA}\n<iq type='result' id='i1'/> </stream:stream>`;

  /** The events of a StreamParser fed `chunks`, as text. */
  function events(chunks: string[]): string[] {
    const p = new StreamParser();
    const out: string[] = [];
    p.on("start", (el: XmlElement) => void out.push(`start ${el.name} ${el.attrs.id}`));
    p.on("element", (el: XmlElement) => void out.push(`element ${el.toString()}`));
    p.on("end", (el: XmlElement) => void out.push(`end ${el.name} children=${el.children.length}`));
    p.on("error", (e: Error) => void out.push(`error ${e.message}`));
    for (const c of chunks) p.write(c);
    return out;
  }

  const expected = [
    "start stream:stream s1",
    `element <message to="a@localhost/r" from="b@localhost/r"><thread>t1</thread><body>["x"]</body></message>`,
    `element <iq type="result" id="i1"/>`,
    "end stream:stream children=0",
  ];

  test("start, one element per stanza, end; built by @xmpp/xml's own element handlers", () => {
    expect(events([stream])).toEqual(expected);
  });

  test("the same when the stream arrives one character at a time", () => {
    expect(events([...stream])).toEqual(expected);
  });
});

test("a real @xmpp/client over a loopback socket parses its stream with useStreamParser's parser", async () => {
  const HEAD =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s2' version='1.0'>";
  // Not an XMPP server: a socket that answers the client's stream header with a header and a stanza.
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket, data) {
        if (data.toString().includes("</stream:stream>")) socket.end("</stream:stream>");
        else socket.write(`${HEAD}<message id='m1'><body>&lt;hi&gt;</body></message>`);
      },
    },
  });
  const service = `xmpp://127.0.0.1:${server.port}`;
  const xmpp = client({ service, domain: "localhost" }) as unknown as {
    reconnect: { stop(): void };
    parser: unknown;
    connect(service: string): Promise<unknown>;
    open(options: { domain: string; lang: string }): Promise<unknown>;
    on(event: "element", fn: (el: XmlElement) => void): void;
    disconnect(): Promise<void>;
  };
  xmpp.reconnect.stop();
  let built = 0;
  class CountingParser extends StreamParser {
    constructor() {
      super();
      built++;
    }
  }
  useStreamParser(xmpp, CountingParser);
  const element = new Promise<XmlElement>((resolve) => xmpp.on("element", resolve));
  try {
    await xmpp.connect(service);
    await xmpp.open({ domain: "localhost", lang: "en" });
    const el = await element;
    expect(el.toString()).toBe(`<message id="m1"><body>&lt;hi&gt;</body></message>`);
    expect(xmpp.parser).toBeInstanceOf(CountingParser);
    expect(built).toBe(1);
  } finally {
    await xmpp.disconnect().catch(() => {});
    server.stop(true);
  }
});
