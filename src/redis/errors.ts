/**
 * Errors of the Redis transport. Each extends the bus-neutral TransportError, so the client and
 * `request`'s exit codes treat them like their XMPP counterparts. Passwords never appear.
 */
import { TransportError } from "../bus/errors.ts";

/** Redis answered a command with an error (`-NOPERM …`, `-ERR …`). */
export class RedisCommandError extends TransportError {
  constructor(
    readonly command: string,
    readonly reply: string,
    where: string,
  ) {
    super(`Redis ${where} refused ${command}: ${reply}`);
    this.name = "RedisCommandError";
  }
}

/** The connection closed (or was found dead) while a command waited for its reply. */
export class RedisConnectionLostError extends TransportError {
  /**
   * @param written False when the command never left this process (it was still queued
   *   for the socket), so sending it again cannot run it twice.
   */
  constructor(
    readonly command: string,
    where: string,
    reason: string,
    readonly written = true,
  ) {
    super(`lost the Redis connection to ${where} during ${command}: ${reason}`);
    this.name = "RedisConnectionLostError";
  }
}

/** An address this bus cannot deliver to (not `opensrf:client|router|service:…`). */
export class RedisAddressError extends TransportError {
  constructor(readonly to: string) {
    super(`cannot send to "${to}": not a Redis bus address (opensrf:client:…, opensrf:router:… or opensrf:service:…)`);
    this.name = "RedisAddressError";
  }
}
