/**
 * The connection settings a command-line client needs, from whichever file it was given.
 */
import { readClientConfig } from "./core.ts";
import type { ClientConfig } from "./types.ts";

/**
 * Reads client settings from opensrf_core.xml (its `/config/opensrf` section) or from a
 * srfsh.xml-style file (its root element), deciding by the document's root element.
 * @throws ConfigError for an unreadable or malformed file or a missing required element.
 */
export function loadClientConfig(file: string): ClientConfig {
  return readClientConfig(file);
}
