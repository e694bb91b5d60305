/**
 * The XMPP stream parser @xmpp/client builds its elements with, running on our
 * {@link XmlTokenizer} instead of ltx's, and able to hand chosen stanzas to a reader that
 * skips element building.
 *
 * @xmpp/xml's `Parser` has no hook for its tokenizer, so {@link StreamParser} subclasses it
 * and swaps the tokenizer through members that are not public API ({@link ParserInternals}).
 * An @xmpp/client client reassigns its `Parser` on every connect, so {@link useStreamParser}
 * pins ours with an accessor. Both are checked against the installed @xmpp/xml and
 * @xmpp/client by test/unit/xmpp-stream-parser.test.ts; re-check them whenever
 * package-lock.json moves those packages off the versions named there.
 */
import { Parser, type XmlElement } from "@xmpp/xml";
import { XmlSyntaxError, XmlTokenizer } from "./xml-tokenizer.ts";

/**
 * Takes over one top-level element of the stream from {@link StreamParser}, reading it from
 * tokenizer events instead of an element tree. Depth 0 is the element itself.
 */
export interface ChildReader {
  /** A start tag: the element's own (depth 0) or one inside it. */
  start(name: string, attrs: Record<string, string>, depth: number): void;
  /** Text directly inside the open element at `depth`. */
  text(text: string, depth: number): void;
  /** The element at `depth` (1 or more) ended. */
  end(depth: number): void;
  /** The element itself ended. */
  finish(): void;
  /**
   * Text events carry character data as it stands in the input, references not replaced
   * (XmlTokenizer's `rawText`), while this reader reads.
   */
  readonly rawText?: boolean;
}

/** Options of {@link StreamParser}. */
export interface StreamParserOptions {
  /**
   * Asked at each top-level element of the stream (a stanza or nonza); a reader it returns
   * reads that element instead of an element tree, and no `element` event is emitted for it.
   */
  childReader?: (name: string) => ChildReader | undefined;
}

/**
 * The members of @xmpp/xml 0.14's `Parser` that {@link StreamParser} uses and that its
 * typings (and docs) do not offer: the tokenizer `write` feeds, the element being built and
 * the root, the tokenizer-event handlers that build elements, and the emitter's `emit`.
 */
export interface ParserInternals {
  /** The tokenizer `write` feeds: replaced by ours. */
  parser: XmlTokenizer;
  /** The stream element once its start tag was read. */
  root: XmlElement | null;
  /** The element being built; `root` between stanzas. */
  cursor: XmlElement | null;
  onStartElement(name: string, attrs: Record<string, string>): void;
  onEndElement(name: string): void;
  onText(text: string): void;
  emit(event: string, ...args: unknown[]): boolean;
}

/** Each member of {@link ParserInternals}, and whether it is a data field or a method. */
export const PARSER_INTERNALS: Readonly<Record<keyof ParserInternals, "field" | "method">> = {
  parser: "field",
  root: "field",
  cursor: "field",
  onStartElement: "method",
  onEndElement: "method",
  onText: "method",
  emit: "method",
};

/**
 * @xmpp/xml's stream parser (what @xmpp/client builds its elements with) on
 * {@link XmlTokenizer}: same `start`/`element`/`end`/`error` events. Tokenizer errors become
 * parser errors, which make the connection close the stream with `bad-format`. With a
 * `childReader`, chosen stanzas skip element building altogether (the hot path).
 */
export class StreamParser extends Parser {
  constructor(options: StreamParserOptions = {}) {
    super();
    const self = this as unknown as ParserInternals;
    const tokenizer = new XmlTokenizer();
    const onStart = self.onStartElement.bind(this);
    const onEnd = self.onEndElement.bind(this);
    const onText = self.onText.bind(this);
    const childReader = options.childReader;
    // The element a reader is reading, and the names open inside it (index = depth).
    let reader: ChildReader | undefined;
    const open: string[] = [];
    // After a mismatched end tag inside a reader: the stream is broken, read nothing more.
    let broken = false;
    const atTop = (): boolean => self.cursor !== null && self.cursor === self.root;

    tokenizer.on("startElement", (name, attrs) => {
      if (broken) return;
      if (reader !== undefined) {
        open.push(name);
        reader.start(name, attrs, open.length - 1);
        return;
      }
      if (childReader !== undefined && atTop()) {
        const r = childReader(name);
        if (r !== undefined) {
          reader = r;
          tokenizer.rawText = r.rawText === true;
          open.length = 0;
          open.push(name);
          r.start(name, attrs, 0);
          return;
        }
      }
      onStart(name, attrs);
    });
    tokenizer.on("endElement", (name) => {
      if (broken) return;
      if (reader === undefined) {
        onEnd(name);
        return;
      }
      const expected = open.pop()!;
      if (name !== expected) {
        broken = true;
        self.emit("error", new XmlSyntaxError(`${expected} must be closed.`));
        return;
      }
      if (open.length > 0) {
        reader.end(open.length);
        return;
      }
      const done = reader;
      reader = undefined;
      tokenizer.rawText = false;
      done.finish();
    });
    tokenizer.on("text", (text) => {
      if (broken) return;
      if (reader !== undefined) {
        reader.text(text, open.length - 1);
        return;
      }
      // Between stanzas (whitespace keepalives): @xmpp/xml would keep appending it to the
      // stream element for the life of the connection.
      if (atTop()) return;
      onText(text);
    });
    tokenizer.on("error", (err) => void self.emit("error", err));
    self.parser = tokenizer;
  }
}

/**
 * Makes an @xmpp/client client build every stream's parser with `parser` (a
 * {@link StreamParser} subclass). The client copies its transport's `Parser` onto itself on
 * each connect (@xmpp/client-core 0.14's `Client#connect`) and `open` constructs it; an
 * accessor whose setter ignores those copies keeps ours in place across reconnects.
 */
export function useStreamParser(xmpp: object, parser: new () => StreamParser): void {
  Object.defineProperty(xmpp, "Parser", { get: () => parser, set: () => {}, configurable: true });
}
