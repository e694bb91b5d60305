import { describe, expect, test } from "bun:test";
import { MASK, maskSecrets } from "../../src/log/mask.ts";
import { formatCall, formatParams, isProtected, REDACTED_PARAMS } from "../../src/log/redact.ts";

const PROTECT = ["open-ils.auth", "open-ils.actor.patron.password"];

describe("isProtected (C's prefix match)", () => {
  test.each([
    ["open-ils.auth.authenticate.complete", true],
    ["open-ils.auth", true],
    ["open-ils.actor.patron.password.reset", true],
    ["open-ils.actor.patron.retrieve", false],
    ["opensrf.math.add", false],
    ["open-ils.au", false],
  ])("%s → %p", (method, expected) => {
    expect(isProtected(method, PROTECT)).toBe(expected);
  });

  test("no list, or an empty entry, protects nothing", () => {
    expect(isProtected("anything", [])).toBe(false);
    expect(isProtected("anything", [""])).toBe(false);
  });
});

describe("formatParams", () => {
  test("JSON of the params without the outer brackets, as C logs them", () => {
    expect(formatParams("add", [2, 2], PROTECT)).toBe("2,2");
    expect(formatParams("opensrf.system.echo", ["hello", 42, { a: [1, null] }], PROTECT)).toBe(
      '"hello",42,{"a":[1,null]}',
    );
    expect(formatParams("x", [], PROTECT)).toBe("");
  });

  test("protected methods are redacted, even without params", () => {
    expect(formatParams("open-ils.auth.authenticate.complete", [{ password: "pw" }], PROTECT)).toBe(REDACTED_PARAMS);
    expect(formatParams("open-ils.auth.session.delete", [], PROTECT)).toBe("**PARAMS REDACTED**");
  });

  test("unserializable params do not throw", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(formatParams("m", [cyclic], [])).toBe("[unserializable params]");
    expect(formatParams("m", [10n], [])).toBe("[unserializable params]");
  });

  test("formatCall", () => {
    expect(formatCall("opensrf.math", "add", [2, 2], PROTECT)).toBe("CALL: opensrf.math add 2,2");
    expect(formatCall("open-ils.auth", "open-ils.auth.authenticate.init", ["admin"], PROTECT)).toBe(
      "CALL: open-ils.auth open-ils.auth.authenticate.init **PARAMS REDACTED**",
    );
  });
});

describe("maskSecrets", () => {
  const SECRET = "Tr0ub4dor&3";

  test.each([
    [
      "legacy auth iq",
      `<iq id='123' type='set'><query xmlns='jabber:iq:auth'><username>opensrf</username><password>${SECRET}</password><resource>r</resource></query></iq>`,
    ],
    ["digest", `<query><digest>597ce5262d1f60ca2fdb1d96ee519ce23f76aed3</digest></query>`],
    ["config element", `<passwd>${SECRET}</passwd>`],
    ["element with attributes", `<password type="plain">${SECRET}</password>`],
    ["JSON", `{"username":"u","password":"${SECRET}"}`],
    ["JSON with escapes", `{"passwd": "a\\"${SECRET}"}`],
    ["JSON in a JSON string", `"{\\"password\\":\\"${SECRET}\\"}"`],
    ["JSON in XML text", `<body>[{&quot;password&quot;:&quot;${SECRET}&quot;}]</body>`],
    ["key=value", `connecting with password=${SECRET} now`],
    ["key: value", `passwd: ${SECRET}`],
    ["quoted", `{password => '${SECRET}'}`],
    ["URL", `xmpp://opensrf:${SECRET}@localhost:5222`],
  ])("%s", (_label, text) => {
    const masked = maskSecrets(text);
    expect(masked).toContain(MASK);
    expect(masked).not.toContain(SECRET);
    expect(masked).not.toContain("597ce5262d1f60ca2fdb1d96ee519ce23f76aed3");
  });

  test("ordinary text is unchanged", () => {
    const text = 'CALL: opensrf.math add 2,2 from opensrf@localhost/_host_1_2 {"username":"u"}';
    expect(maskSecrets(text)).toBe(text);
    expect(maskSecrets("No password specified in configuration file x")).toBe(
      "No password specified in configuration file x",
    );
  });

  test("literal secrets are masked anywhere; very short ones are not", () => {
    expect(maskSecrets(`login as opensrf with ${SECRET}!`, [SECRET])).toBe(`login as opensrf with ${MASK}!`);
    expect(maskSecrets("a b c", ["b"])).toBe("a b c");
  });

  test("the C stanza shape keeps its structure", () => {
    expect(maskSecrets("<password>x</password>")).toBe(`<password>${MASK}</password>`);
    expect(maskSecrets('{"password":"x","a":1}')).toBe(`{"password":"${MASK}","a":1}`);
  });
});
