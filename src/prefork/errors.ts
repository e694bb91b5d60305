/**
 * Errors of the prefork server; `context` names the service (and file or drone) involved.
 */

/** Context carried by prefork errors. */
export interface PreforkErrorContext {
  service?: string;
  /** The app module path, when the error is about it. */
  app?: string;
  pid?: number;
  /** The free-drone board file (or the directory it was to be made in). */
  path?: string;
}

/** Base of prefork failures. */
export class PreforkError extends Error {
  constructor(
    message: string,
    readonly context: PreforkErrorContext = {},
  ) {
    super(message);
    this.name = "PreforkError";
  }
}

/** A drone process could not be started. */
export class SpawnError extends PreforkError {
  constructor(message: string, context: PreforkErrorContext) {
    super(message, context);
    this.name = "SpawnError";
  }
}

/** The service module cannot be loaded or is not a service definition. */
export class AppLoadError extends PreforkError {
  constructor(message: string, context: PreforkErrorContext) {
    super(message, context);
    this.name = "AppLoadError";
  }
}

/** The settings could not be obtained (file or settings server). */
export class SettingsError extends PreforkError {
  constructor(message: string, context: PreforkErrorContext) {
    super(message, context);
    this.name = "SettingsError";
  }
}

/** The shared free-drone board (board.ts) cannot be made or mapped; the pool then works by IPC alone. */
export class BoardError extends PreforkError {
  constructor(message: string, context: PreforkErrorContext) {
    super(message, context);
    this.name = "BoardError";
  }
}
