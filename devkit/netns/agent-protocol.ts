/**
 * The line protocol between a test and its agent (agent.ts): what each command carries and
 * what comes back. Shared by both sides so they cannot drift apart.
 */
import type { JsonValue } from "../../src/protocol/types.ts";

/** An XMPP server and account, for the agent's login checks and account creation. */
export interface LoginTarget {
  host: string;
  port: number;
  domain: string;
  user: string;
  password: string;
}

/** One command; `id` pairs it with its reply. */
export type AgentCommand = { id: number } & (
  | { op: "hello" }
  | { op: "connect" }
  | { op: "login-check"; target: LoginTarget; timeoutMs?: number }
  | { op: "register"; target: LoginTarget; timeoutMs?: number }
  | { op: "request"; service: string; method: string; params?: JsonValue[]; timeout?: number; xid?: string }
  | {
      op: "load";
      service: string;
      method: string;
      /** `"$i"` stands for the request's index. */
      params: JsonValue[];
      total: number;
      concurrency: number;
      /** Client timeout per reply, seconds. */
      timeout: number;
      /** xids are `<tag>-<i>`. */
      tag: string;
      deadlineMs?: number;
      pauseMs?: number;
    }
  | { op: "stop-load"; load: number }
  | {
      /**
       * Pings `jid` (XEP-0199, from a login of its own) every `everyMs` until the XMPP server
       * answers for it with an error — its session is gone — and says after how long. A ping
       * without an answer (the peer is cut off) counts as not gone yet.
       */
      op: "until-gone";
      jid: string;
      everyMs: number;
      timeoutMs: number;
    }
  | {
      op: "sessions";
      service: string;
      count: number;
      requests: number;
      method: string;
      params: JsonValue[];
      timeout: number;
      tag: string;
    }
  | { op: "quit" }
);

/**
 * How a call ended: `ok`; `lost` (no reply within the client's timeout — silence);
 * `status N` (an error status from the router or the service); `delivery <condition>` (a
 * bounce: the message could not be delivered); `error <name>` (anything else).
 */
export type CallOutcome = "ok" | "lost" | `status ${number}` | `delivery ${string}` | `error ${string}`;

/** One request of a load run. */
export interface LoadRecord {
  i: number;
  xid: string;
  /** Epoch ms it was sent. */
  sent: number;
  /** Milliseconds until it settled. */
  ms: number;
  outcome: CallOutcome;
  /** JID that sent the (last) reply: a drone, which names its host. "" when none. */
  from: string;
  result?: JsonValue;
  message?: string;
}

/** One stateful session of a `sessions` run. */
export interface SessionRecord {
  /** The drone the CONNECT pinned the session to ("" when it failed). */
  remote: string;
  /** Sender of each request's reply, in order. */
  froms: string[];
  results: JsonValue[];
  errors: string[];
}

/** The reply to a `load`. */
export interface LoadReply {
  records: LoadRecord[];
  /** Epoch ms the load started. */
  started: number;
  elapsedMs: number;
}
