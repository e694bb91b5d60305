// Minimal typings for the parts of @xmpp/client and @xmpp/xml we use (they ship none).

declare module "@xmpp/xml" {
  /** An ltx element as delivered by @xmpp/client. */
  export interface XmlElement {
    name: string;
    attrs: Record<string, string | undefined>;
    children: Array<XmlElement | string>;
    getChild(name: string, xmlns?: string): XmlElement | undefined;
    getChildren(name: string, xmlns?: string): XmlElement[];
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    text(): string;
    is(name: string, xmlns?: string): boolean;
    toString(): string;
  }
  export class Parser {
    constructor();
    write(chunk: string): void;
    end(chunk?: string): void;
    on(event: "element", fn: (el: XmlElement) => void): this;
    on(event: "start" | "end", fn: (el: XmlElement) => void): this;
    on(event: "error", fn: (err: Error) => void): this;
  }
  export function escapeXML(s: string): string;
  export function escapeXMLText(s: string): string;
  export function unescapeXML(s: string): string;
  export function unescapeXMLText(s: string): string;
  function xml(name: string, attrs?: Record<string, string>, ...children: Array<XmlElement | string>): XmlElement;
  export default xml;
}

declare module "ltx/lib/parse.js" {
  import type { XmlElement } from "@xmpp/xml";
  /** `options.Parser`: the SAX tokenizer class to use instead of ltx's own. */
  export default function parse(xml: string, options?: { Parser?: new () => unknown }): XmlElement;
}

declare module "@xmpp/client" {
  import type { XmlElement } from "@xmpp/xml";
  export interface XmppClientOptions {
    service: string;
    domain: string;
    resource?: string;
    username?: string;
    password?: string;
    credentials?: (
      auth: (creds: { username: string; password: string }, mechanism: string) => Promise<void>,
      mechanisms: string[],
    ) => Promise<void>;
    timeout?: number;
  }
  export interface XmppJid {
    toString(): string;
    local: string;
    domain: string;
    resource: string;
  }
  export interface XmppClient {
    status: string;
    jid: XmppJid | null;
    timeout: number;
    socket: { write(s: string | Uint8Array, cb?: (err?: Error) => void): boolean; destroy(): void } | null;
    reconnect: { delay: number; stop(): void; start(): void; on(ev: string, fn: () => void): void };
    streamManagement?: { enabled?: boolean; allowResume?: boolean };
    on(event: "stanza", fn: (el: XmlElement) => void): this;
    on(event: "online", fn: (jid: XmppJid) => void): this;
    on(event: "offline" | "disconnect" | "close" | "connect" | "open", fn: (...args: unknown[]) => void): this;
    on(event: "error", fn: (err: Error & { condition?: string }) => void): this;
    on(event: "status", fn: (status: string, ...args: unknown[]) => void): this;
    removeAllListeners(event?: string): this;
    start(): Promise<XmppJid>;
    stop(): Promise<void>;
    disconnect(): Promise<void>;
    send(el: XmlElement): Promise<void>;
    write(s: string): Promise<void>;
    /** Sends an iq and resolves with the result stanza; rejects with a StanzaError (`condition`) or a TimeoutError. */
    iqCaller: { request(stanza: XmlElement, timeoutMs?: number): Promise<XmlElement> };
    /** Registers a handler for incoming iq gets; its return value becomes the result's child. */
    iqCallee: {
      get(
        ns: string,
        name: string,
        handler: (ctx: { stanza: XmlElement; element?: XmlElement }) => XmlElement | undefined,
      ): void;
    };
  }
  export function client(options: XmppClientOptions): XmppClient;
  export { default as xml } from "@xmpp/xml";
}
