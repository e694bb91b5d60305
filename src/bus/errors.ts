/**
 * The base of every bus failure, shared by the XMPP and Redis transports, so callers (the
 * client, `request`'s exit codes) need not know which bus failed.
 */

/** Base of transport failures; `context` says which connection. */
export class TransportError extends Error {
  constructor(
    message: string,
    readonly context: { jid?: string; address?: string; service?: string } = {},
  ) {
    super(message);
    this.name = "TransportError";
  }
}

/**
 * Outgoing message over the configured size limit (`<max_stanza_size>`); nothing was sent.
 * `message` names size, limit and the fix.
 */
export class MessageTooLargeError extends TransportError {
  constructor(
    readonly size: number,
    readonly limit: number,
    readonly to: string,
    message: string,
  ) {
    super(message);
    this.name = "MessageTooLargeError";
  }
}

/** Could not reach the bus, or it refused our login. */
export class ConnectError extends TransportError {
  constructor(message: string, context: { jid?: string; address?: string; service?: string }) {
    super(message, context);
    this.name = "ConnectError";
  }
}
