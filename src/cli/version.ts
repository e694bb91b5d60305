/**
 * `osrf-prefork version`: version, Bun version and platform.
 */
import { defineCommand } from "citty";
import { VERSION } from "../version.ts";

export default defineCommand({
  meta: { name: "version", description: "Print the osrf-prefork version, Bun version and platform" },
  args: {
    json: { type: "boolean", description: "Print as JSON", default: false },
  },
  run({ args }) {
    const info = { version: VERSION, bun: Bun.version, platform: `${process.platform}-${process.arch}` };
    console.log(args.json ? JSON.stringify(info) : `osrf-prefork ${info.version} (bun ${info.bun}, ${info.platform})`);
  },
});
