import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ConfigError } from "../../src/config/errors.ts";
import { childNamed, childrenNamed, findElement, parseXml, readXmlFile } from "../../src/config/xml.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/config");

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("parseXml", () => {
  test("builds a tree without comments, keeping text as strings", () => {
    const root = parseXml(
      `<?xml version="1.0"?>\n<!-- top -->\n<config a="1">\n  <!-- <port>1</port> -->\n  <port>05222</port>\n</config>`,
      "t.xml",
    );
    expect(root.name).toBe("config");
    expect(root.path).toBe("/config");
    expect(root.attributes).toEqual({ a: "1" });
    expect(root.children.map((c) => c.name)).toEqual(["port"]);
    expect(childNamed(root, "port")?.text).toBe("05222");
  });

  test("repeated elements are all kept and get indexed paths", () => {
    const root = parseXml("<r><x>1</x><y/><x>2</x></r>", "t.xml");
    const xs = childrenNamed(root, "x");
    expect(xs.map((x) => x.text)).toEqual(["1", "2"]);
    expect(xs.map((x) => x.path)).toEqual(["/r/x[1]", "/r/x[2]"]);
    expect(childNamed(root, "y")?.path).toBe("/r/y");
  });

  test("decodes entities and numeric references, but not inside CDATA", () => {
    const root = parseXml(`<r v="a&amp;b"><t>x &lt; y &#65;&#x42;</t><c><![CDATA[<raw>&amp;]]></c></r>`, "t.xml");
    expect(root.attributes.v).toBe("a&b");
    expect(childNamed(root, "t")?.text).toBe("x < y AB");
    expect(childNamed(root, "c")?.text).toBe("<raw>&amp;");
  });

  test("text is not trimmed (readers decide)", () => {
    expect(childNamed(parseXml("<r><a>  x  </a></r>", "t.xml"), "a")?.text).toBe("  x  ");
  });

  test("a byte order mark is accepted", () => {
    expect(parseXml("\uFEFF<r/>", "t.xml").name).toBe("r");
  });

  test("malformed XML gives a one-line ConfigError with line and column", () => {
    const err = configError(() => parseXml("<config>\n  <opensrf>\n</config>", "core.xml"));
    expect(err.file).toBe("core.xml");
    expect(err.message).toContain("core.xml:3:1: malformed XML");
    expect(err.message).toContain("near line 3");
    expect(err.message).not.toContain("\n");
  });

  test("a truncated document is rejected (the parser alone would accept it)", () => {
    const err = configError(() => parseXml("<config>\n  <opensrf>\n    <domain>x</domain>\n", "core.xml"));
    expect(err.message).toContain("unclosed elements <config>, <opensrf>");
    expect(err.message).toMatch(/^core\.xml:4: malformed XML/);
  });

  test("empty document and several roots are rejected", () => {
    expect(configError(() => parseXml("", "e.xml")).message).toContain("e.xml");
    expect(configError(() => parseXml("<a/><b/>", "two.xml")).message).toContain("content outside the root element");
  });

  test("undefined entities are rejected with the element path", () => {
    const err = configError(() => parseXml("<r><a>&nbsp;</a></r>", "t.xml"));
    expect(err.path).toBe("/r/a");
    expect(err.message).toContain("&nbsp;");
  });

  test("prototype-polluting names are refused, not obeyed", () => {
    configError(() => parseXml("<r><__proto__><x>1</x></__proto__></r>", "t.xml"));
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe("readXmlFile", () => {
  test("missing file: ConfigError 'cannot read FILE: ENOENT …'", () => {
    const file = join(FIXTURES, "nope.xml");
    const err = configError(() => readXmlFile(file));
    expect(err.file).toBe(file);
    expect(err.message).toStartWith(`cannot read ${file}: ENOENT`);
    expect(err.message).not.toContain("\n");
    // the path appears once: the system message's own ", open '…'" is dropped
    expect(err.message.split(file).length).toBe(2);
  });

  test("a directory is not readable as a file", () => {
    expect(configError(() => readXmlFile(FIXTURES)).message).toContain("EISDIR");
  });
});

describe("findElement", () => {
  const root = parseXml("<config><opensrf><domain>d</domain></opensrf><gateway><x/></gateway></config>", "t.xml");

  test("absolute paths", () => {
    expect(findElement(root, "/config/gateway")?.path).toBe("/config/gateway");
    expect(findElement(root, "/config/nope")).toBeUndefined();
    expect(findElement(root, "/other/gateway")).toBeUndefined();
  });

  test("bare names are found anywhere, like C's //context", () => {
    expect(findElement(root, "domain")?.path).toBe("/config/opensrf/domain");
    expect(findElement(root, "config")?.path).toBe("/config");
  });
});
