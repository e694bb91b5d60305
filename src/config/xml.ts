/**
 * XML files to a plain element tree. Comments, processing instructions and the
 * declaration are dropped; text stays text (no number guessing) so each reader decides
 * what to convert.
 */
import { readFileSync } from "node:fs";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { ConfigError, unreadableFileError } from "./errors.ts";

/** One XML element. */
export interface XmlElement {
  /** Tag name as written (prefix included, e.g. `ns:tag`). */
  readonly name: string;
  /**
   * Path from the document root for error messages, e.g. `/config/opensrf/domain`;
   * repeated siblings get a 1-based index: `/config/routers/router[2]`.
   */
  readonly path: string;
  /** Attributes, entities decoded. */
  readonly attributes: Readonly<Record<string, string>>;
  /** Child elements in document order. */
  readonly children: readonly XmlElement[];
  /**
   * Text directly inside this element (text and CDATA concatenated, entities decoded,
   * not trimmed). Includes indentation when the element also has child elements.
   */
  readonly text: string;
}

// fast-xml-parser's ordered output: `{tag: children, ":@": attrs}` or `{"#text": s}`.
type OrderedNode = Record<string, unknown>;

const TEXT = "#text";
const CDATA = "#cdata";
const ATTRS = ":@";

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  // Entities are decoded here instead: the parser leaves numeric references alone.
  processEntities: false,
  cdataPropName: CDATA,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // Keep names such as "toString" as written; we never index objects by tag name.
  onDangerousProperty: (name: string) => name,
});

/**
 * Parses an XML document and returns its root element.
 * @param xml Document text.
 * @param file Name used in error messages.
 * @throws ConfigError when the text is not one well-formed XML element.
 */
export function parseXml(xml: string, file: string): XmlElement {
  const text = xml.charCodeAt(0) === 0xfeff ? xml.slice(1) : xml;
  // The parser accepts truncated documents silently, so validate first.
  const verdict = XMLValidator.validate(text);
  if (verdict !== true) throw malformed(file, text, verdict.err);

  let nodes: OrderedNode[];
  try {
    nodes = parser.parse(text) as OrderedNode[];
  } catch (cause) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    const reserved = /Invalid name: "([^"]+)"/.exec(msg);
    throw malformed(file, text, {
      msg: reserved
        ? `the name "${reserved[1]}" is reserved (__proto__, constructor and prototype cannot be used)`
        : msg,
    });
  }

  const roots = nodes.filter((n) => elementName(n) !== undefined);
  const strayText = nodes.some((n) => typeof n[TEXT] === "string" && (n[TEXT] as string).trim());
  if (roots.length !== 1 || strayText) {
    throw new ConfigError({
      file,
      path: "",
      problem: `${file}: malformed XML: ${roots.length === 0 ? "no root element" : "content outside the root element"}`,
      expected: "exactly one root element, e.g. <config>…</config>",
    });
  }
  return buildElement(roots[0] as OrderedNode, "", file);
}

/**
 * Reads and parses an XML file.
 * @throws ConfigError "cannot read FILE: ENOENT …" when the file cannot be read, or when
 *   it is not well-formed XML.
 */
export function readXmlFile(file: string): XmlElement {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw unreadableFileError(file, cause);
  }
  return parseXml(text, file);
}

/** Child elements of `el` named `name`, in document order. */
export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}

/** The first child element of `el` named `name`. */
export function childNamed(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

/**
 * Finds an element by a location spec:
 * - `/a/b/c`: absolute path from the document root (first match at each step);
 * - `name`: the first element with that name anywhere, root included, in document order —
 *   how OpenSRF's C config reader resolves its context (`//name`).
 */
export function findElement(root: XmlElement, spec: string): XmlElement | undefined {
  if (!spec.startsWith("/")) return findDescendant(root, spec);
  const [first, ...rest] = spec.split("/").filter(Boolean);
  if (first !== root.name) return undefined;
  let el: XmlElement | undefined = root;
  for (const step of rest) {
    el = childNamed(el, step);
    if (!el) return undefined;
  }
  return el;
}

function findDescendant(el: XmlElement, name: string): XmlElement | undefined {
  if (el.name === name) return el;
  for (const child of el.children) {
    const hit = findDescendant(child, name);
    if (hit) return hit;
  }
  return undefined;
}

function elementName(node: OrderedNode): string | undefined {
  for (const key of Object.keys(node)) {
    if (key !== ATTRS && key !== TEXT && key !== CDATA) return key;
  }
  return undefined;
}

function buildElement(node: OrderedNode, parentPath: string, file: string, index = 0): XmlElement {
  const name = elementName(node) as string;
  const path = `${parentPath}/${name}${index ? `[${index}]` : ""}`;
  const rawAttrs = (node[ATTRS] ?? {}) as Record<string, string>;
  const attributes: Record<string, string> = {};
  for (const key of Object.keys(rawAttrs)) {
    attributes[key] = decodeEntities(String(rawAttrs[key]), file, path);
  }

  const kids = (node[name] ?? []) as OrderedNode[];
  // Count same-named siblings first so only repeated ones carry an index in their path.
  const counts = new Map<string, number>();
  for (const kid of kids) {
    const kidName = elementName(kid);
    if (kidName !== undefined) counts.set(kidName, (counts.get(kidName) ?? 0) + 1);
  }

  const seen = new Map<string, number>();
  const children: XmlElement[] = [];
  let text = "";
  for (const kid of kids) {
    if (typeof kid[TEXT] === "string") {
      text += decodeEntities(kid[TEXT] as string, file, path);
    } else if (Array.isArray(kid[CDATA])) {
      // CDATA is literal: no entity decoding.
      for (const part of kid[CDATA] as OrderedNode[]) text += String(part[TEXT] ?? "");
    } else {
      const kidName = elementName(kid);
      if (kidName === undefined) continue;
      const n = (seen.get(kidName) ?? 0) + 1;
      seen.set(kidName, n);
      children.push(buildElement(kid, path, file, (counts.get(kidName) ?? 0) > 1 ? n : 0));
    }
  }
  return { name, path, attributes, children, text };
}

const NAMED_ENTITIES: Readonly<Record<string, string>> = {
  lt: "<",
  gt: ">",
  amp: "&",
  quot: '"',
  apos: "'",
};

function decodeEntities(raw: string, file: string, path: string): string {
  if (!raw.includes("&")) return raw;
  return raw.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z_][\w.-]*);/g, (whole, ref: string) => {
    if (ref.startsWith("#")) {
      const code = ref[1] === "x" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (code > 0 && code <= 0x10ffff) return String.fromCodePoint(code);
    } else if (Object.hasOwn(NAMED_ENTITIES, ref)) {
      return NAMED_ENTITIES[ref] as string;
    }
    throw new ConfigError({
      file,
      path,
      problem: `undefined or invalid entity ${whole}`,
      expected: "&lt; &gt; &amp; &quot; &apos; or a numeric character reference",
    });
  });
}

interface ValidatorErr {
  code?: string;
  msg: string;
  line?: number;
  col?: number;
}

function malformed(file: string, text: string, err: ValidatorErr): ConfigError {
  let { msg, line, col } = err;
  // A truncated document is reported as "Invalid '[ "a", "b"]' found." at 1:1.
  const unclosed = /^Invalid '(\[[\s\S]*\])' found\.?$/.exec(msg);
  if (unclosed) {
    try {
      const names = JSON.parse(unclosed[1] as string) as string[];
      const list = names.map((n) => `<${n}>`).join(", ");
      msg = `unclosed element${names.length > 1 ? "s" : ""} ${list} at end of file (truncated?)`;
      line = text.split("\n").length;
      col = undefined;
    } catch {
      // keep the parser's text
    }
  }
  const where = line ? `:${line}${col ? `:${col}` : ""}` : "";
  return new ConfigError({
    file,
    path: "",
    problem: `${file}${where}: malformed XML: ${msg}`,
    expected: "well-formed XML",
    fix: line ? `fix the syntax near line ${line}` : "fix the syntax",
  });
}
