/**
 * The version of this build, from package.json.
 */
import pkg from "../package.json" with { type: "json" };

/** Version of this build (from package.json). */
export const VERSION: string = pkg.version;
