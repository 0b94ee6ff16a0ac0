/**
 * The invariant checker. It trusts only what the clients saw (start and end of each request, status):
 *  - stale accept: a check that STARTED after a logout / revoke / logout-all ending that session had
 *    answered 204 must not answer 200. A logout-all ends the sessions whose login answered before it
 *    started; a login overlapping it may have taken effect after it (linearizable either way), so the
 *    sessions of such logins are only counted, and are ended by the next logout-all;
 *  - a check answering 200 names the session's own user;
 *  - no 5xx other than 503;
 *  - every request answered within the command timeout + margin (client timeout = that bound);
 *  - no connection error except while a service fault (worker kill, instance restart) runs (a request
 *    in flight then that never gets an answer is reported as orphaned, not failed);
 *  - after each fault, every check answers again (200/401) within the recovery cap: the time it took
 *    is the fault's recovery time.
 */
import type { FaultRecord, RequestRecord, Timeline } from "./timeline";
import type { SessionInfo } from "./load";

export interface Violation {
  kind: "stale-accept" | "wrong-user" | "5xx" | "no-answer" | "connection-error" | "unrecovered" | "fault-failed";
  atMs: number;
  message: string;
  /** Request seq / session involved, to pick the timeline around it. */
  seq?: number;
  session?: number;
}

export interface CheckResult {
  violations: Violation[];
  /** Accepted checks of sessions whose login overlapped a logout-all in time (allowed; counted). */
  raceSurvivors: Array<{ session: number; checkSeq: number; logoutAllSeq: number }>;
  /** 401 on a check of a session nobody ended (lost by a failover/restart), with the reason unknown. */
  lostSessions: number;
  /**
   * Requests that never got an answer because a service fault (worker SIGKILL, instance restart) was
   * running while they were in flight: a connection the primary handed to a worker that was being
   * killed. Reported, not failed: only the client's own timeout can end them.
   */
  orphaned: number[];
}

const SERVICE_FAULTS = new Set(["worker-kill", "instance-restart"]);
/** Connection errors are expected this long after a service fault's repair too (sockets draining). */
const SERVICE_FAULT_TAIL_MS = 2_000;

export function checkInvariants(
  timeline: Timeline,
  sessions: ReadonlyMap<number, SessionInfo>,
  o: { recoveryCapMs: number; durationMs: number },
): CheckResult {
  const reqs = [...timeline.requests].sort((a, b) => a.startMs - b.startMs);
  const violations: Violation[] = [];
  const killedAt = new Map<number, { atMs: number; seq: number; how: string }>();
  const kill = (s: number, atMs: number, seq: number, how: string): void => {
    const prev = killedAt.get(s);
    if (prev === undefined || atMs < prev.atMs) killedAt.set(s, { atMs, seq, how });
  };
  const logins = reqs.filter((r) => r.op === "login" && r.status === 200 && sessions.has(r.session));
  const loginOf = new Map(logins.map((r) => [r.session, r]));
  const racing = new Map<number, RequestRecord>(); // session -> the logout-all it raced

  for (const r of reqs) {
    if (r.status !== 204) continue;
    if (r.op === "logout") kill(r.session, r.endMs, r.seq, `logout #${r.seq}`);
    if (r.op === "revoke" && r.target !== undefined) kill(r.target, r.endMs, r.seq, `revoke #${r.seq}`);
    if (r.op === "logout-all") {
      kill(r.session, r.endMs, r.seq, `logout-all #${r.seq}`);
      for (const l of logins) {
        if (l.user !== r.user || l.session === r.session) continue;
        if (l.endMs < r.startMs) kill(l.session, r.endMs, r.seq, `logout-all #${r.seq}`);
        else if (l.startMs < r.endMs && !racing.has(l.session)) racing.set(l.session, r);
      }
    }
  }

  const raceSurvivors: CheckResult["raceSurvivors"] = [];
  let lostSessions = 0;
  const orphaned: number[] = [];
  for (const r of reqs) {
    if (r.op === "check" && r.status === 200) {
      const k = killedAt.get(r.session);
      if (k !== undefined && r.startMs > k.atMs) {
        violations.push({
          kind: "stale-accept", atMs: r.startMs, seq: r.seq, session: r.session,
          message: `check #${r.seq} of session ${r.session} (user ${r.user}) started at ${fmt(r.startMs)} and answered 200, ` +
            `${(r.startMs - k.atMs).toFixed(0)} ms after ${k.how} had answered 204 at ${fmt(k.atMs)}`,
        });
      }
      const raced = racing.get(r.session);
      if (raced !== undefined && r.startMs > raced.endMs && !(k !== undefined && r.startMs > k.atMs)) {
        raceSurvivors.push({ session: r.session, checkSeq: r.seq, logoutAllSeq: raced.seq });
      }
      if (r.answeredUser !== undefined && r.answeredUser !== r.user) {
        violations.push({ kind: "wrong-user", atMs: r.startMs, seq: r.seq, session: r.session,
          message: `check #${r.seq} of a session of ${r.user} answered 200 for ${r.answeredUser}` });
      }
    }
    if (r.op === "check" && r.status === 401 && !killedAt.has(r.session) && loginOf.has(r.session)) lostSessions++;
    if (r.status >= 500 && r.status !== 503) {
      violations.push({ kind: "5xx", atMs: r.startMs, seq: r.seq, session: r.session,
        message: `${r.op} #${r.seq} answered ${r.status}` });
    }
    if (r.status === 0 && r.error === "timeout" && inServiceFault(timeline.faults, r)) {
      orphaned.push(r.seq);
    } else if (r.status === 0 && r.error === "timeout") {
      violations.push({ kind: "no-answer", atMs: r.startMs, seq: r.seq, session: r.session,
        message: `${r.op} #${r.seq} started at ${fmt(r.startMs)} had no answer after ${(r.endMs - r.startMs).toFixed(0)} ms` });
    } else if (r.status === 0 && !inServiceFault(timeline.faults, r)) {
      violations.push({ kind: "connection-error", atMs: r.startMs, seq: r.seq, session: r.session,
        message: `${r.op} #${r.seq} at ${fmt(r.startMs)} failed with ${r.error} while no service fault ran` });
    }
  }

  computeRecovery(timeline.faults, reqs, o.durationMs);
  for (const f of timeline.faults) {
    if (f.detail.startsWith("failed:")) {
      violations.push({ kind: "fault-failed", atMs: f.startMs, message: `fault ${f.index} ${f.kind}: ${f.detail}` });
    } else if (f.unrecovered) {
      violations.push({ kind: "unrecovered", atMs: f.startMs,
        message: `fault ${f.index} ${f.kind} at ${fmt(f.startMs)}: checks had not all answered again within ${o.recoveryCapMs} ms` });
    }
  }
  violations.sort((a, b) => a.atMs - b.atMs);
  return { violations, raceSurvivors, lostSessions, orphaned };
}

/** True when the request was in flight during a service fault (or just after its repair). */
function inServiceFault(faults: readonly FaultRecord[], r: RequestRecord): boolean {
  return faults.some((f) => SERVICE_FAULTS.has(f.kind) && r.endMs >= f.startMs && r.startMs <= f.healedMs + SERVICE_FAULT_TAIL_MS);
}

/**
 * Recovery of each fault: from its start to the start of the first check that answered (200/401)
 * after the last check that did not, among the checks started before the next fault (or the end).
 */
function computeRecovery(faults: FaultRecord[], reqs: readonly RequestRecord[], endMs: number): void {
  faults.forEach((f, i) => {
    const until = faults[i + 1]?.startMs ?? endMs;
    const checks = reqs.filter((r) => r.op === "check" && r.startMs >= f.startMs && r.startMs < until);
    const answered = (r: RequestRecord) => r.status === 200 || r.status === 401;
    // A check still in flight when the next fault started failed because of that one.
    const failed = (r: RequestRecord) => !answered(r) && r.endMs < until;
    let lastFail = -1;
    checks.forEach((r, j) => {
      if (failed(r)) lastFail = j;
    });
    f.failedChecks = checks.filter(failed).length;
    if (lastFail === -1) {
      f.recoveryMs = undefined;
      return;
    }
    const next = checks.slice(lastFail + 1).find(answered);
    if (next === undefined) {
      f.unrecovered = true;
      return;
    }
    f.recoveryMs = next.startMs - f.startMs;
  });
}

export function fmt(ms: number): string {
  return `${(ms / 1000).toFixed(3)} s`;
}

/** The requests and faults around `atMs`, as text lines (session numbers, never tokens). */
export function timelineAround(timeline: Timeline, v: Violation, windowMs = 1500, max = 40): string {
  const lines: string[] = [];
  for (const f of timeline.faults) {
    if (f.startMs <= v.atMs + 10_000 && f.healedMs >= v.atMs - 10_000) {
      lines.push(`  fault ${f.index} ${f.kind} ${fmt(f.startMs)} .. ${fmt(f.healedMs)}: ${f.detail}`);
    }
  }
  const near = timeline.requests
    .filter((r) => Math.abs(r.startMs - v.atMs) <= windowMs && (v.session === undefined || r.session === v.session || r.target === v.session || r.op !== "check"))
    .sort((a, b) => a.startMs - b.startMs);
  const related = near.filter((r) => v.session !== undefined && (r.session === v.session || r.target === v.session));
  const shown = (related.length > 0 ? related : near).slice(0, max);
  for (const r of shown) {
    lines.push(
      `  #${r.seq} vu${r.vu} ${r.op.padEnd(10)} user=${r.user} session=${r.session}${r.target !== undefined ? ` target=${r.target}` : ""} ` +
        `${fmt(r.startMs)} -> ${fmt(r.endMs)} ${r.status === 0 ? `no answer (${r.error})` : r.status}`,
    );
  }
  return lines.join("\n");
}
