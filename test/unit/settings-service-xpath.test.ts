import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SettingsDocument } from "../../src/settings-service/document.ts";
import { XPathError } from "../../src/settings-service/xpath.ts";

const XML = `<?xml version="1.0"?>
<opensrf version="0.0.3">
  <default>
    <dirs><log>/var/log</log></dirs>
    <apps>
      <a.one id="7"><keepalive>3</keepalive><language>perl</language></a.one>
      <a.two><keepalive>012</keepalive><notes>12345678901</notes></a.two>
    </apps>
  </default>
  <hosts>
    <h1><apps><a.one><keepalive>9</keepalive></a.one></apps></h1>
    <h2><activeapps><appname>a.two</appname></activeapps></h2>
  </hosts>
</opensrf>
`;

function doc(xml = XML): SettingsDocument {
  const file = join(mkdtempSync(join(tmpdir(), "osrf-xpath-")), "opensrf.xml");
  writeFileSync(file, xml);
  return SettingsDocument.load(file);
}

describe("SettingsDocument", () => {
  const d = doc();

  test("host config: default overlaid by the host, Perl numbers", () => {
    const h = d.hostConfig("h1")!;
    expect(h).toMatchObject({
      dirs: { log: "/var/log" },
      apps: { "a.one": { id: 7, keepalive: 9, language: "perl" } },
    });
    // 1-10 digits become numbers (leading zeros dropped, as Perl's 0+"012"); 11 digits stay text.
    expect(h.apps).toMatchObject({ "a.two": { keepalive: 12, notes: "12345678901" } });
    expect(d.hostConfig("nohost")).toEqual(d.defaultConfig()!);
  });

  test("no <default> and an unknown host: null, as Perl's undef", () => {
    const bare = doc("<opensrf><hosts><x><a>1</a></x></hosts></opensrf>");
    expect(bare.hostConfig("y")).toBeNull();
    expect(bare.defaultConfig()).toBeNull();
    expect(bare.hostConfig("x")).toEqual({ a: 1 });
  });

  test("xpath: absolute, relative to <opensrf>, descendants, unions in document order", () => {
    expect(d.xpath("/opensrf/default/dirs/log")).toEqual(["/var/log"]);
    expect(d.xpath("default/dirs/log")).toEqual(["/var/log"]);
    expect(d.xpath("//a.one/keepalive")).toEqual([3, 9]);
    expect(d.xpath("/opensrf/hosts/h1/apps/a.one/keepalive | /opensrf/default/dirs")).toEqual([{ log: "/var/log" }, 9]);
    expect(d.xpath("//keepalive | //a.one/keepalive")).toEqual([3, 12, 9]);
    expect(d.xpath("/opensrf/nothing")).toEqual([]);
  });

  test("xpath: predicates, wildcards, attributes, parent and the document", () => {
    expect(d.xpath("/opensrf/default/apps/*[2]/keepalive")).toEqual([12]);
    expect(d.xpath("/opensrf/default/apps/*[last()]/notes")).toEqual(["12345678901"]);
    expect(d.xpath("/opensrf/default/apps/*[@id='7']/language")).toEqual(["perl"]);
    expect(d.xpath("/opensrf/default/apps/*[language='perl']/@id")).toEqual([7]);
    expect(d.xpath("/opensrf/@version")).toEqual(["0.0.3"]);
    expect(d.xpath("//appname/../..")).toEqual([{ activeapps: { appname: "a.two" } }]);
    expect(d.xpath("/opensrf/hosts/*")).toHaveLength(2);
    const [whole] = d.xpath("/") as Array<Record<string, unknown>>;
    expect(Object.keys(whole!)).toEqual(["opensrf"]);
  });

  test("xpath outside the subset is refused, not answered wrongly", () => {
    for (const bad of [
      "",
      "/opensrf/default/apps/*[contains(., 'x')]",
      "child::opensrf",
      "count(//x)",
      "/opensrf/[1]",
      "/a/@b/c",
    ]) {
      expect(() => d.xpath(bad)).toThrow(XPathError);
    }
  });
});
