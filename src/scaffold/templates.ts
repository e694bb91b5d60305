/**
 * The files of a new service project (`osrf-prefork init`), as text. The project's own
 * test (test/service.test.ts) runs in this repository's CI against the packaged API, so
 * these stay correct.
 */

/** What the templates are filled in with. */
export interface ScaffoldVars {
  /** The service name, e.g. "bookshelf" or "open-ils.shelf". */
  service: string;
  /** The npm package name of the project. */
  packageName: string;
  /** The dependency spec of "osrf-prefork", e.g. "file:vendor/osrf-prefork-0.1.0.tgz" or "0.1.0". */
  osrfPrefork: string;
  /** Version of @types/bun: the Bun the binary runs on. */
  bunTypes: string;
}

/** One file of the project: its path inside the project and its text. */
export interface ScaffoldFile {
  path: string;
  text: string;
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function packageJson(v: ScaffoldVars): string {
  return json({
    name: v.packageName,
    version: "0.1.0",
    private: true,
    type: "module",
    scripts: { test: "bun test", typecheck: "tsc --noEmit" },
    devDependencies: { "@types/bun": v.bunTypes, "osrf-prefork": v.osrfPrefork },
  });
}

const TSCONFIG = json({
  compilerOptions: {
    target: "ES2022",
    module: "ESNext",
    moduleResolution: "bundler",
    lib: ["ES2023"],
    types: ["bun"],
    strict: true,
    noUncheckedIndexedAccess: true,
    isolatedModules: true,
    verbatimModuleSyntax: true,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
  },
  include: ["src", "test"],
});

function service(v: ScaffoldVars): string {
  const s = v.service;
  return `/**
 * ${s}: an OpenSRF service. \`osrf-prefork serve --app src/service.ts\` runs it; the tests
 * in test/ call it in-process.
 */
import { defineMethod, defineService, type JsonValue, MethodException, StatusCode } from "osrf-prefork";

/** Stateless: a plain return value is one result. */
const add = defineMethod<[JsonValue, JsonValue]>({
  name: "${s}.add",
  argc: 2,
  notes: "Adds two numbers. PARAMS(a, b)",
  handler(_ctx, a, b) {
    if (typeof a !== "number" || typeof b !== "number") {
      throw new MethodException(StatusCode.BADREQUEST, "${s}.add: a and b must be numbers");
    }
    return a + b;
  },
});

/** Streaming: each value the generator yields is one result, sent as it is produced. */
const count = defineMethod<[JsonValue]>({
  name: "${s}.count",
  argc: 1,
  stream: true,
  notes: "Streams the numbers 1..n. PARAMS(n)",
  async *handler(_ctx, n) {
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 1000) {
      throw new MethodException(StatusCode.BADREQUEST, "${s}.count: n must be an integer from 0 to 1000");
    }
    for (let i = 1; i <= n; i++) yield i;
  },
});

/** Stateful: ctx.session.state lives from CONNECT to DISCONNECT (or the keepalive timeout). */
const tally = defineMethod<[JsonValue]>({
  name: "${s}.tally.add",
  argc: 1,
  notes: "Adds n to the session's running total and returns the total. PARAMS(n)",
  handler(ctx, n) {
    if (!ctx.session.stateful) {
      throw new MethodException(StatusCode.BADREQUEST, "${s}.tally.add needs a CONNECT session");
    }
    if (typeof n !== "number") throw new MethodException(StatusCode.BADREQUEST, "${s}.tally.add: n must be a number");
    const state = ctx.session.state as { total?: number };
    state.total = (state.total ?? 0) + n;
    return state.total;
  },
});

export default defineService({
  name: "${s}",
  methods: [add, count, tally],
});
`;
}

function serviceTest(v: ScaffoldVars): string {
  const s = v.service;
  return `import { afterAll, expect, test } from "bun:test";
import { MethodError, testService } from "osrf-prefork/testing";
import service from "../src/service.ts";

// The real server's request handling, in this process: no XMPP server needed.
const t = testService(service, { settings: { keepalive: 5 } });
afterAll(() => t.close());

/** The MethodError a call fails with. */
async function failure(p: Promise<unknown>): Promise<MethodError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  if (!(e instanceof MethodError)) throw new Error(\`expected a MethodError, got \${String(e)}\`);
  return e;
}

test("add: one result", async () => {
  expect(await t.call("${s}.add", 2, 3)).toEqual([5]);
});

test("add: bad params are a 400 for the caller", async () => {
  const e = await failure(t.call("${s}.add", "two", 3));
  expect(e.statusCode).toBe(400);
  expect(e.status).toBe("${s}.add: a and b must be numbers");
});

test("count: one result per number, or all in one array with .atomic", async () => {
  expect(await t.call("${s}.count", 3)).toEqual([1, 2, 3]);
  expect(await t.call("${s}.count.atomic", 3)).toEqual([[1, 2, 3]]);
  const seen: unknown[] = [];
  for await (const n of t.request("${s}.count", [2])) seen.push(n);
  expect(seen).toEqual([1, 2]);
});

test("tally: a running total per CONNECT session", async () => {
  const a = await t.session();
  const b = await t.session();
  expect(await a.call("${s}.tally.add", 2)).toEqual([2]);
  expect(await a.call("${s}.tally.add", 3)).toEqual([5]);
  expect(await b.call("${s}.tally.add", 10)).toEqual([10]);
  await a.disconnect();
  await b.disconnect();
  expect((await failure(t.call("${s}.tally.add", 1))).status).toBe("${s}.tally.add needs a CONNECT session");
});

test("tally: an idle session ends after keepalive seconds", async () => {
  const s = await t.session();
  await s.call("${s}.tally.add", 1);
  await t.advance(5);
  expect(s.ended).toBe("timeout");
});

test("an unknown method is a 404, as from any OpenSRF server", async () => {
  const e = await failure(t.call("${s}.nope"));
  expect([e.statusCode, e.status]).toEqual([404, "Method [${s}.nope] not found for service ${s}"]);
});
`;
}

function opensrfXml(v: ScaffoldVars): string {
  const s = v.service;
  return `<?xml version="1.0"?>
<!--
  Settings of ${s} for \`osrf-prefork serve --settings opensrf.xml\` on this machine.
  On an OpenSRF host, copy the <${s}> block into /opensrf/default/apps of the install's
  opensrf.xml (with an absolute <implementation>) and add ${s} to the host's activeapps.
-->
<opensrf version="0.0.3">
  <default>
    <apps>
      <${s}>
        <language>typescript</language>
        <!-- relative to this file -->
        <implementation>src/service.ts</implementation>
        <!-- seconds a CONNECT session may stay idle -->
        <keepalive>5</keepalive>
        <unix_config>
          <min_children>1</min_children>
          <max_children>5</max_children>
          <max_requests>1000</max_requests>
          <max_backlog_queue>100</max_backlog_queue>
        </unix_config>
      </${s}>
    </apps>
  </default>
  <hosts>
    <localhost>
      <activeapps>
        <appname>${s}</appname>
      </activeapps>
    </localhost>
  </hosts>
</opensrf>
`;
}

function readme(v: ScaffoldVars): string {
  const s = v.service;
  return `# ${s}

An OpenSRF service in TypeScript, served by \`osrf-prefork\`.

| file | what it is |
|---|---|
| \`src/service.ts\` | the service: a stateless, a streaming and a session method |
| \`test/service.test.ts\` | its tests, calling the methods in-process (\`osrf-prefork/testing\`) |
| \`opensrf.xml\` | the service's settings (apps/${s}) |

\`\`\`sh
npm install                 # osrf-prefork (types, testing kit) and @types/bun
bun test                    # no bun? BUN_BE_BUN=1 osrf-prefork test
npx tsc --noEmit            # typecheck (npm i -D typescript if npx cannot find tsc)
\`\`\`

Serve it behind a router (opensrf_core.xml names the XMPP server and accounts; default
\`$OSRF_CONFIG\`, else /openils/conf/opensrf_core.xml) and call it:

\`\`\`sh
osrf-prefork serve --service ${s} --app src/service.ts --settings opensrf.xml --config opensrf_core.xml
osrf-prefork request --config opensrf_core.xml ${s} ${s}.add 2 3
osrf-prefork request --config opensrf_core.xml ${s} ${s}.count.atomic 3
osrf-prefork request --config opensrf_core.xml --connect ${s} ${s}.tally.add 5
osrf-prefork status --service ${s} --settings opensrf.xml
\`\`\`

Under the server, \`import … from "osrf-prefork"\` is the server's own copy of the API; the
package in node_modules is only for types and tests, and has the server's version.
`;
}

/** The files of a project serving `vars.service`. */
export function scaffoldFiles(vars: ScaffoldVars): ScaffoldFile[] {
  return [
    { path: "package.json", text: packageJson(vars) },
    { path: "tsconfig.json", text: TSCONFIG },
    { path: "src/service.ts", text: service(vars) },
    { path: "test/service.test.ts", text: serviceTest(vars) },
    { path: "opensrf.xml", text: opensrfXml(vars) },
    { path: "README.md", text: readme(vars) },
    { path: ".gitignore", text: "node_modules/\n" },
  ];
}
