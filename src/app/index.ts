/**
 * The application runtime: the API service authors use (`defineService`, `defineMethod`,
 * `MethodException`) and the host that serves a service (`createServiceHost`).
 */

export type { OsrfClient, PendingRequest } from "../client/types.ts";
export type { Clock } from "../clock/clock.ts";
export type { Logger } from "../log/types.ts";
// Re-exported so authors need nothing beyond this module: status codes for
// MethodException, and the types of params, results and nested calls.
export { StatusCode } from "../protocol/status.ts";
export type { JsonValue } from "../protocol/types.ts";
export { defineMethod, defineService } from "./define.ts";
export { MethodException, ResultNotSerializableError } from "./errors.ts";
export { createServiceHost } from "./host.ts";
export { ATOMIC_SUFFIX, createRegistry } from "./registry.ts";
export { describeMethod, SystemMethod } from "./system-methods.ts";
export type {
  AnyMethodDefinition,
  HandleOutcome,
  HandlerReturn,
  HostSettings,
  MethodContext,
  MethodDefinition,
  MethodDescription,
  MethodParams,
  MethodRegistry,
  MethodSession,
  MethodSignature,
  RegisteredMethod,
  ResultValue,
  ServiceDefinition,
  ServiceEnv,
  ServiceHost,
  ServiceHostOptions,
  ServiceInput,
  SessionEndReason,
  SignatureParam,
} from "./types.ts";
