import { describe, expect, test } from "bun:test";
import { droneCommand, isDroneArgv } from "../../src/prefork/self-exec.ts";

describe("the drone's command line", () => {
  test("what the spawner runs is what the entry point takes for a drone", () => {
    // Run from source here: [bun, src/cli.ts, "drone"], which is also process.argv's shape.
    const cmd = droneCommand();
    expect(cmd).toHaveLength(3);
    expect(isDroneArgv(cmd)).toBe(true);
    // A compiled binary's process.argv: ["bun", "/$bunfs/root/<name>", "drone"].
    expect(isDroneArgv(["bun", "/$bunfs/root/osrf-prefork", "drone"])).toBe(true);
  });

  test("anything more or else goes to the command-line parser", () => {
    const bin = ["bun", "/$bunfs/root/osrf-prefork"];
    expect(isDroneArgv([...bin, "drone", "--help"])).toBe(false);
    expect(isDroneArgv([...bin, "serve"])).toBe(false);
    expect(isDroneArgv([...bin, "Drone"])).toBe(false);
    expect(isDroneArgv(bin)).toBe(false);
    expect(isDroneArgv([...bin, "serve", "drone"])).toBe(false);
  });
});
