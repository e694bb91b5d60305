#!/usr/bin/env bun
/**
 * osrf-prefork command line: subcommands only (src/cli/main.ts); each lives in src/cli/<name>.ts.
 */
import { runMain } from "citty";
import { main } from "./cli/main.ts";
import { showUsage } from "./cli/usage.ts";

void runMain(main, { showUsage });
