/**
 * What the run saw, as the clients saw it: every request (start, end, status) and every fault window.
 * Times are ms since the run's start (performance.now based, monotonic). Tokens never appear here: a
 * session is named by a small number the load generator gives it.
 */

/** What a request was for. */
export type Op = "login" | "check" | "logout" | "logout-all" | "list" | "revoke";

/** Status of an answer; 0 = no answer (see `error`). */
export interface RequestRecord {
  seq: number;
  vu: number;
  op: Op;
  user: string;
  /** The session presented (checks, logout, logout-all, list, revoke) or created (login); -1 for none. */
  session: number;
  /** revoke: the session revoked. */
  target?: number;
  startMs: number;
  endMs: number;
  status: number;
  /** For status 0: "timeout", or the socket error code (ECONNREFUSED, ECONNRESET...). */
  error?: string;
  /** check 200: the username the service answered with. */
  answeredUser?: string;
}

/** One fault: injected at `startMs`, its repair action done at `healedMs`. */
export interface FaultRecord {
  index: number;
  kind: string;
  detail: string;
  startMs: number;
  healedMs: number;
  /** Time from startMs until every check answered again (200/401), or undefined if none failed. */
  recoveryMs?: number;
  /** Checks that did not answer (503 or no answer) between this fault and the next. */
  failedChecks: number;
  /** True when the checks had not all answered again within the recovery cap. */
  unrecovered?: boolean;
}

/** An append-only record of the run, shared by the load, the faults and the checker. */
export class Timeline {
  readonly requests: RequestRecord[] = [];
  readonly faults: FaultRecord[] = [];
  private readonly t0 = performance.now();
  private seq = 0;
  /** Online view for the fault scheduler: when a check last failed / last succeeded (start times). */
  lastCheckFailureMs = -Infinity;
  lastCheckSuccessStartMs = -Infinity;

  now(): number {
    return performance.now() - this.t0;
  }

  nextSeq(): number {
    return this.seq++;
  }

  add(r: RequestRecord): void {
    this.requests.push(r);
    if (r.op === "check") {
      if (r.status === 200 || r.status === 401) {
        this.lastCheckSuccessStartMs = Math.max(this.lastCheckSuccessStartMs, r.startMs);
      } else {
        this.lastCheckFailureMs = Math.max(this.lastCheckFailureMs, r.endMs);
      }
    }
  }
}
