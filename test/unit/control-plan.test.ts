import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/config/errors.ts";
import { readSettingsFromString } from "../../src/config/settings.ts";
import {
  argsClaim,
  pidFilePath,
  pidState,
  readPidFile,
  removePidFile,
  writePidFile,
} from "../../src/control/pidfile.ts";
import { planHost } from "../../src/control/plan.ts";

const XML = `<opensrf>
  <default>
    <dirs><log>/srv/log</log></dirs>
    <activeapps><appname>x.default</appname></activeapps>
    <apps>
      <x.ts><language>TypeScript</language><implementation>apps/x.ts</implementation></x.ts>
      <x.js><language>javascript</language><implementation>/abs/x.js</implementation></x.js>
      <x.perl><language>perl</language><implementation>X::Perl</implementation></x.perl>
      <x.c><language>C</language><implementation>libx.so</implementation></x.c>
      <opensrf.settings><language>typescript</language><implementation>builtin:opensrf.settings</implementation></opensrf.settings>
      <x.noimpl><language>typescript</language></x.noimpl>
    </apps>
  </default>
  <hosts>
    <h><activeapps><appname>x.ts</appname><appname>x.perl</appname><appname>x.js</appname><appname>x.c</appname><appname>opensrf.settings</appname><appname>x.unknown</appname><appname>x.ts</appname></activeapps></h>
    <bad><activeapps><appname>x.noimpl</appname></activeapps></bad>
  </hosts>
</opensrf>`;

describe("planHost", () => {
  const tree = readSettingsFromString(XML);

  test("the host's activeapps, settings server first, others skipped with a reason", () => {
    const plan = planHost(tree, "h", "/etc/osrf/opensrf.xml");
    expect(plan.hostKnown).toBe(true);
    expect(plan.logDir).toBe("/srv/log");
    expect(plan.services).toEqual([
      { service: "opensrf.settings", kind: "settings" },
      { service: "x.ts", kind: "serve", app: "/etc/osrf/apps/x.ts" },
      {
        service: "x.perl",
        kind: "skip",
        reason: "language perl is not served by osrf-prefork (start it with osrf_control)",
      },
      { service: "x.js", kind: "serve", app: "/abs/x.js" },
      { service: "x.c", kind: "skip", reason: "language c is not served by osrf-prefork (start it with osrf_control)" },
      {
        service: "x.unknown",
        kind: "skip",
        reason: "listed in activeapps but /etc/osrf/opensrf.xml has no /apps/x.unknown section",
      },
    ]);
  });

  test("an unknown host gets the default's activeapps", () => {
    const plan = planHost(tree, "elsewhere", "opensrf.xml");
    expect(plan.hostKnown).toBe(false);
    expect(plan.services.map((s) => s.service)).toEqual(["x.default"]);
  });

  test("a TypeScript service without <implementation> is a config error naming the element", () => {
    expect(() => planHost(tree, "bad", "opensrf.xml")).toThrow(ConfigError);
    expect(() => planHost(tree, "bad", "opensrf.xml")).toThrow("/apps/x.noimpl/implementation");
  });
});

describe("pid files", () => {
  const dir = mkdtempSync(join(tmpdir(), "osrf-pid-"));

  test("write, read, remove only when the pid matches", () => {
    const file = pidFilePath(dir, "x.svc");
    expect(file).toBe(join(dir, "x.svc.pid"));
    writePidFile(file, 4242);
    expect(readPidFile(file)).toBe(4242);
    expect(removePidFile(file, 1)).toBe(false);
    expect(removePidFile(file, 4242)).toBe(true);
    expect(readPidFile(file)).toBeUndefined();
  });

  test("a pid is ours only when its command line claims the pid file", () => {
    const file = pidFilePath(dir, "x.svc");
    expect(argsClaim(["OpenSRF Listener [x.svc]", "serve", "--pid-file", file], file)).toBe(true);
    expect(argsClaim(["x", `--pid-file=${file}`], file)).toBe(true);
    expect(argsClaim(["x", "--pid-file", `${file}.other`], file)).toBe(false);
    // This test process is alive but no listener: the file would be stale.
    expect(pidState(process.pid, file, "x.svc")).toBe("reused");
    expect(pidState(2 ** 22 + 1, file, "x.svc")).toBe("gone");
  });
});
