/**
 * What `osrf-prefork request --raw` prints on stderr: one line per message on the wire,
 * `>> ` for sent and `<< ` for received, then the stanza (XMPP) or JSON element (Redis).
 */
import { parseStanza } from "../../src/xmpp/stanza.ts";
import type { Stanza } from "../../src/xmpp/types.ts";

/** One wire line of `request --raw`: its direction and the message text after the marker. */
export interface RawLine {
  dir: ">>" | "<<";
  text: string;
}

/** The wire lines of `request --raw` output, in order; other stderr lines are skipped. */
export function rawLines(stderr: string): RawLine[] {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith(">> ") || l.startsWith("<< "))
    .map((l) => ({ dir: l.slice(0, 2) as RawLine["dir"], text: l.slice(3) }));
}

/** The stanzas `request --raw` printed on the XMPP bus, split by direction. */
export function rawStanzas(stderr: string): { sent: Stanza[]; received: Stanza[] } {
  const sent: Stanza[] = [];
  const received: Stanza[] = [];
  for (const l of rawLines(stderr)) (l.dir === ">>" ? sent : received).push(parseStanza(l.text));
  return { sent, received };
}
