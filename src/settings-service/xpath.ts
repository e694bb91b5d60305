/**
 * The part of XPath 1.0 that `opensrf.settings.xpath.get` callers use on opensrf.xml:
 * location paths of child steps, evaluated the way Perl's `findnodes` on the document
 * element does (absolute paths from the document, relative ones from `<opensrf>`).
 *
 * Supported: `/` and `//` separators, name tests and `*`, `.` and `..`, a final `@name`
 * attribute step, unions with `|`, and predicates `[n]`, `[last()]`, `[@a]`, `[@a='v']`,
 * `[child]`, `[child='v']`. Anything else is refused with an {@link XPathError} rather than
 * answered wrongly.
 */
import type { XmlElement } from "../config/xml.ts";

/** An expression outside the supported subset, or malformed. */
export class XPathError extends Error {
  override readonly name = "XPathError";
}

/** An element with what XPath needs and {@link XmlElement} lacks: its parent and document position. */
export interface XNode {
  readonly el: XmlElement;
  readonly parent: XNode | undefined;
  readonly children: readonly XNode[];
  /** Position in document order. */
  readonly order: number;
}

/** One match: the document itself (`/`), an element, or an attribute of one. */
export type XPathMatch =
  | { kind: "document"; node: XNode }
  | { kind: "element"; node: XNode }
  | { kind: "attribute"; node: XNode; name: string; value: string };

/** Wraps a parsed document for {@link evaluate}. */
export function indexDocument(root: XmlElement): XNode {
  let order = 0;
  const wrap = (el: XmlElement, parent: XNode | undefined): XNode => {
    const children: XNode[] = [];
    const node: XNode = { el, parent, children, order: order++ };
    for (const c of el.children) children.push(wrap(c, node));
    return node;
  };
  return wrap(root, undefined);
}

type Predicate =
  | { kind: "index"; n: number }
  | { kind: "last" }
  | { kind: "attr"; name: string; value?: string }
  | { kind: "child"; name: string; value?: string };

interface Step {
  /** `//` before this step: search descendants-or-self first. */
  deep: boolean;
  /** A name, `*`, `.`, `..` or `@name`. */
  test: string;
  predicates: Predicate[];
}

interface Path {
  absolute: boolean;
  steps: Step[];
}

/**
 * Evaluates `expr` against a document; matches come in document order without
 * duplicates, as a node-set does.
 * @throws XPathError for syntax outside the supported subset.
 */
export function evaluate(doc: XNode, expr: string): XPathMatch[] {
  const paths = parse(expr);
  const byKey = new Map<string, XPathMatch & { order: number }>();
  for (const path of paths) {
    for (const m of evalPath(doc, path)) {
      const key = m.kind === "attribute" ? `${m.node.order}@${m.name}` : `${m.kind}${m.node.order}`;
      // The document precedes its root element; attributes follow their element.
      byKey.set(key, { ...m, order: m.node.order + (m.kind === "attribute" ? 0.5 : m.kind === "document" ? -0.5 : 0) });
    }
  }
  return [...byKey.values()].sort((a, b) => a.order - b.order).map(({ order: _o, ...m }) => m as XPathMatch);
}

/** The document node above the root element: absolute paths start there. */
const DOCUMENT = Symbol("document");
type Context = XNode | typeof DOCUMENT;

function evalPath(doc: XNode, path: Path): XPathMatch[] {
  if (path.absolute && path.steps.length === 0) return [{ kind: "document", node: doc }];
  let contexts: Context[] = [path.absolute ? DOCUMENT : doc];
  for (const [i, step] of path.steps.entries()) {
    if (step.test.startsWith("@")) {
      if (i !== path.steps.length - 1) throw new XPathError("an attribute step (@name) must be the last step");
      const name = step.test.slice(1);
      const out: XPathMatch[] = [];
      for (const c of step.deep ? descendantsOrSelf(contexts, doc) : contexts) {
        if (c === DOCUMENT) continue;
        for (const [n, v] of Object.entries(c.el.attributes)) {
          if (name === "*" || n === name) out.push({ kind: "attribute", node: c, name: n, value: v });
        }
      }
      return out;
    }
    const next: XNode[] = [];
    for (const c of step.deep ? descendantsOrSelf(contexts, doc) : contexts) {
      next.push(...applyPredicates(select(c, step.test, doc), step.predicates));
    }
    contexts = unique(next);
  }
  return contexts.filter((c): c is XNode => c !== DOCUMENT).map((node) => ({ kind: "element", node }));
}

function select(c: Context, test: string, doc: XNode): XNode[] {
  if (test === ".") return c === DOCUMENT ? [] : [c];
  if (test === "..") return c === DOCUMENT || !c.parent ? [] : [c.parent];
  const kids = c === DOCUMENT ? [doc] : c.children;
  return test === "*" ? [...kids] : kids.filter((k) => k.el.name === test);
}

function descendantsOrSelf(contexts: Context[], doc: XNode): Context[] {
  const out: Context[] = [];
  const walk = (n: XNode): void => {
    out.push(n);
    n.children.forEach(walk);
  };
  for (const c of contexts) {
    if (c === DOCUMENT) {
      out.push(DOCUMENT);
      walk(doc);
    } else walk(c);
  }
  return unique(out);
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

function applyPredicates(nodes: XNode[], predicates: Predicate[]): XNode[] {
  let cur = nodes;
  for (const p of predicates) {
    switch (p.kind) {
      case "index":
        cur = cur[p.n - 1] ? [cur[p.n - 1]!] : [];
        break;
      case "last":
        cur = cur.length ? [cur[cur.length - 1]!] : [];
        break;
      case "attr":
        cur = cur.filter(
          (n) =>
            Object.hasOwn(n.el.attributes, p.name) && (p.value === undefined || n.el.attributes[p.name] === p.value),
        );
        break;
      case "child":
        cur = cur.filter((n) =>
          n.children.some((k) => k.el.name === p.name && (p.value === undefined || stringValue(k.el) === p.value)),
        );
        break;
    }
  }
  return cur;
}

/**
 * XPath string-value: all descendant text. Exact for leaf elements, which is what
 * settings compare; mixed content loses its interleaving (XmlElement keeps text apart).
 */
function stringValue(el: XmlElement): string {
  return el.text + el.children.map(stringValue).join("");
}

// ------------------------------------------------------------------------------------
// Parsing

const NAME = /^[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?/;

function parse(expr: string): Path[] {
  if (typeof expr !== "string" || expr.trim() === "") throw new XPathError("empty XPath expression");
  return splitUnion(expr).map((part) => parsePath(part.trim(), expr));
}

/** Splits on `|` outside quotes and brackets. */
function splitUnion(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = "";
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const ch = expr[i]!;
    if (quote) {
      if (ch === quote) quote = "";
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "[") depth++;
    else if (ch === "]") depth--;
    else if (ch === "|" && depth === 0) {
      parts.push(expr.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(expr.slice(start));
  return parts;
}

function parsePath(text: string, whole: string): Path {
  const bad = (why: string): never => {
    throw new XPathError(`unsupported XPath "${whole}": ${why}`);
  };
  if (text === "") bad("empty path in a union");
  let rest = text;
  const absolute = rest.startsWith("/");
  const steps: Step[] = [];
  if (rest === "/") return { absolute, steps };
  let deep = false;
  if (rest.startsWith("//")) {
    deep = true;
    rest = rest.slice(2);
  } else if (absolute) rest = rest.slice(1);
  for (;;) {
    let test: string;
    if (rest.startsWith("..")) test = "..";
    else if (rest.startsWith(".")) test = ".";
    else if (rest.startsWith("*")) test = "*";
    else if (rest.startsWith("@*")) test = "@*";
    else {
      const at = rest.startsWith("@") ? "@" : "";
      const m = NAME.exec(rest.slice(at.length));
      if (!m) bad(`expected a name, *, . or .. at "${rest || "(end)"}"`);
      test = at + m![0];
      if (rest.slice(at.length + m![0].length).startsWith("("))
        bad(`functions and axes such as ${m![0]}() are not supported`);
    }
    rest = rest.slice(test.length);
    if (rest.startsWith("::")) bad("axes (name::) are not supported");
    const predicates: Predicate[] = [];
    while (rest.startsWith("[")) {
      const end = closingBracket(rest);
      if (end < 0) bad("unclosed [");
      predicates.push(parsePredicate(rest.slice(1, end).trim(), bad));
      rest = rest.slice(end + 1);
    }
    steps.push({ deep, test, predicates });
    if (rest === "") break;
    if (rest.startsWith("//")) {
      deep = true;
      rest = rest.slice(2);
    } else if (rest.startsWith("/")) {
      deep = false;
      rest = rest.slice(1);
    } else bad(`unexpected "${rest}"`);
  }
  return { absolute, steps };
}

function closingBracket(s: string): number {
  let quote = "";
  for (let i = 1; i < s.length; i++) {
    const ch = s[i]!;
    if (quote) {
      if (ch === quote) quote = "";
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "]") return i;
  }
  return -1;
}

function parsePredicate(p: string, bad: (why: string) => never): Predicate {
  if (/^\d+$/.test(p)) {
    const n = Number(p);
    return n >= 1 ? { kind: "index", n } : bad(`position [${p}] must be 1 or more`);
  }
  if (/^last\(\s*\)$/.test(p)) return { kind: "last" };
  const m = /^(@?)([A-Za-z_][\w.\-:]*)\s*(?:=\s*(?:'([^']*)'|"([^"]*)"))?$/.exec(p);
  if (!m) return bad(`predicate [${p}] is not supported (use [n], [last()], [@a], [@a='v'], [child] or [child='v'])`);
  const value = m[3] ?? m[4];
  const name = m[2]!;
  return m[1]
    ? { kind: "attr", name, ...(value !== undefined ? { value } : {}) }
    : { kind: "child", name, ...(value !== undefined ? { value } : {}) };
}
