/**
 * `osrf-prefork/testing`: what a service author's own tests need to call their methods
 * in-process, with no XMPP server — {@link testService} — and the in-memory doubles the
 * server's own tests use.
 */
export type { CallAnswer, CallFake, CallTable } from "./call-table.ts";
export { type LogLine, MemoryTransport, type RecordedCall, RecordingLogger, TableClient } from "./doubles.ts";
export { ManualClock } from "./manual-clock.ts";
export { MethodError } from "./method-error.ts";
export {
  type CallOptions,
  type TestCaller,
  type TestService,
  type TestServiceOptions,
  type TestSession,
  testService,
} from "./test-service.ts";
