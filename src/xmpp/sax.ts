/**
 * The SAX tokenizer of ltx 3.1.2 (lib/parsers/ltx.js, MIT, Copyright (c) 2010 Stephan Maka),
 * ported unchanged except for one fix: where ltx fast-forwards with `indexOf` through text,
 * attribute values and comments, a miss (-1) left it stepping one character at a time while
 * re-scanning the whole rest of the chunk each step. That is quadratic in the length of a text
 * run: a 1 MB `<body>` took ~35 s to parse, blocking the event loop. On a miss we now jump to
 * the end of the chunk (the run continues in the next one, as before).
 *
 * Used by XmppConnection (stream parser of @xmpp/client) and parseStanza.
 */
import { EventEmitter } from "node:events";
import { Parser } from "@xmpp/xml";
import { unescapeXML } from "ltx/lib/escape.js";

const STATE_TEXT = 0;
const STATE_IGNORE_COMMENT = 1;
const STATE_IGNORE_INSTRUCTION = 2;
const STATE_TAG_NAME = 3;
const STATE_TAG = 4;
const STATE_ATTR_NAME = 5;
const STATE_ATTR_EQ = 6;
const STATE_ATTR_QUOT = 7;
const STATE_ATTR_VALUE = 8;
const STATE_CDATA = 9;

/** Emits `startElement(name, attrs)`, `endElement(name, selfClosing)`, `text(str)`, `error(err)`. */
export class LinearSax extends EventEmitter {
  write: (data: string | Buffer) => void;

  constructor() {
    super();
    let state = STATE_TEXT;
    let remainder: string | null | undefined;
    let parseRemainder = false;
    let tagName: string | undefined;
    let attrs: Record<string, string> | undefined;
    let endTag: boolean | undefined;
    let selfClosing: boolean | undefined;
    let attrQuote = 0;
    let attrQuoteChar = "";
    let recordStart: number | undefined = 0;
    let attrName: string | undefined;

    const handleTagOpening = (isEnd: boolean | undefined, name: string | undefined, a: Record<string, string> | undefined) => {
      if (!isEnd) {
        this.emit("startElement", name, a);
        if (selfClosing) this.emit("endElement", name, true);
      } else {
        this.emit("endElement", name, false);
      }
    };

    this.write = (input: string | Buffer) => {
      let data = typeof input === "string" ? input : input.toString();
      let pos = 0;

      // Anything from the previous write()?
      if (remainder) {
        data = remainder + data;
        pos += !parseRemainder ? remainder.length : 0;
        parseRemainder = false;
        remainder = null;
      }

      const endRecording = (): string | undefined => {
        if (typeof recordStart === "number") {
          const recorded = data.slice(recordStart, pos);
          recordStart = undefined;
          return recorded;
        }
        return undefined;
      };

      for (; pos < data.length; pos++) {
        switch (state) {
          case STATE_TEXT: {
            // Fast-forward to the next '<'; with none in this chunk, to its last character.
            const lt = data.indexOf("<", pos);
            pos = lt === -1 ? data.length - 1 : lt;
            break;
          }
          case STATE_ATTR_VALUE: {
            const quot = data.indexOf(attrQuoteChar, pos);
            pos = quot === -1 ? data.length - 1 : quot;
            break;
          }
          case STATE_IGNORE_COMMENT: {
            // ltx ends a comment (or declaration) at "-->", else at the first "]]>".
            const endComment = data.indexOf("-->", pos);
            if (endComment !== -1) {
              pos = endComment + 2; // the '>'
            } else {
              const endBracket = data.indexOf("]]>", pos);
              pos = endBracket === -1 ? data.length - 1 : endBracket + 2;
            }
            break;
          }
          // No default
        }

        const c = data.charCodeAt(pos);
        switch (state) {
          case STATE_TEXT:
            if (c === 60 /* < */) {
              const text = endRecording();
              if (text) this.emit("text", unescapeXML(text));
              state = STATE_TAG_NAME;
              recordStart = pos + 1;
              attrs = {};
            }
            break;
          case STATE_CDATA:
            if (c === 93 /* ] */) {
              if (data.substr(pos + 1, 2) === "]>") {
                const cData = endRecording();
                if (cData) this.emit("text", cData);
                state = STATE_TEXT;
              } else if (data.length < pos + 2) {
                parseRemainder = true;
                pos = data.length;
              }
            }
            break;
          case STATE_TAG_NAME:
            if (c === 47 /* / */ && recordStart === pos) {
              recordStart = pos + 1;
              endTag = true;
            } else if (c === 33 /* ! */) {
              if (data.substr(pos + 1, 7) === "[CDATA[") {
                recordStart = pos + 8;
                state = STATE_CDATA;
              } else if (data.length < pos + 8 && "[CDATA[".startsWith(data.slice(pos + 1))) {
                // Maybe CDATA, but the chunk ends here: let the next write() decide.
                parseRemainder = true;
                pos = data.length;
              } else {
                recordStart = undefined;
                state = STATE_IGNORE_COMMENT;
              }
            } else if (c === 63 /* ? */) {
              recordStart = undefined;
              state = STATE_IGNORE_INSTRUCTION;
            } else if (c <= 32 || c === 47 /* / */ || c === 62 /* > */) {
              tagName = endRecording();
              pos--;
              state = STATE_TAG;
            }
            break;
          case STATE_IGNORE_COMMENT:
            if (c === 62 /* > */) {
              const prevFirst = data.charCodeAt(pos - 1);
              const prevSecond = data.charCodeAt(pos - 2);
              if ((prevFirst === 45 /* - */ && prevSecond === 45) /* - */ || (prevFirst === 93 /* ] */ && prevSecond === 93) /* ] */) {
                state = STATE_TEXT;
              }
            }
            break;
          case STATE_IGNORE_INSTRUCTION:
            if (c === 62 /* > */) {
              const prev = data.charCodeAt(pos - 1);
              if (prev === 63 /* ? */) state = STATE_TEXT;
            }
            break;
          case STATE_TAG:
            if (c === 62 /* > */) {
              handleTagOpening(endTag, tagName, attrs);
              tagName = undefined;
              attrs = undefined;
              endTag = undefined;
              selfClosing = undefined;
              state = STATE_TEXT;
              recordStart = pos + 1;
            } else if (c === 47 /* / */) {
              selfClosing = true;
            } else if (c > 32) {
              recordStart = pos;
              state = STATE_ATTR_NAME;
            }
            break;
          case STATE_ATTR_NAME:
            if (c <= 32 || c === 61 /* = */) {
              attrName = endRecording();
              pos--;
              state = STATE_ATTR_EQ;
            }
            break;
          case STATE_ATTR_EQ:
            if (c === 61 /* = */) state = STATE_ATTR_QUOT;
            break;
          case STATE_ATTR_QUOT:
            if (c === 34 /* " */ || c === 39 /* ' */) {
              attrQuote = c;
              attrQuoteChar = c === 34 ? '"' : "'";
              state = STATE_ATTR_VALUE;
              recordStart = pos + 1;
            }
            break;
          case STATE_ATTR_VALUE:
            if (c === attrQuote) {
              const value = unescapeXML(endRecording() ?? "");
              attrs![attrName!] = value;
              attrName = undefined;
              state = STATE_TAG;
            }
            break;
        }
      }

      if (typeof recordStart === "number" && recordStart <= data.length) {
        remainder = data.slice(recordStart);
        recordStart = 0;
      }
    };
  }

  end(data?: string | Buffer): void {
    if (data) this.write(data);
    this.write = () => {};
  }
}

/** @xmpp/xml's stream parser (what @xmpp/client builds elements with) on {@link LinearSax}. */
export class StreamParser extends Parser {
  constructor() {
    super();
    const self = this as unknown as {
      parser: LinearSax;
      onStartElement(name: string, attrs: Record<string, string>): void;
      onEndElement(name: string): void;
      onText(text: string): void;
    };
    const sax = new LinearSax();
    sax.on("startElement", self.onStartElement.bind(this));
    sax.on("endElement", self.onEndElement.bind(this));
    sax.on("text", self.onText.bind(this));
    self.parser = sax;
  }
}
