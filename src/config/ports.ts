/**
 * The buses' default ports, apart from core.ts: what a drone needs of them must not load the
 * XML configuration reader (fast-xml-parser) along with them — a drone gets its
 * configuration over IPC and never reads opensrf_core.xml.
 */

/** XMPP client port used when `<port>` is absent. */
export const DEFAULT_PORT = 5222;
/** Redis port used when `<port>` is absent on the Redis bus. */
export const DEFAULT_REDIS_PORT = 6379;
