/**
 * The fault schedule: seeded, printed before it starts, so a failing run can be replayed with the same
 * `--seed` (same kinds in the same order with the same parameters; timings follow the machine). Kinds
 * are drawn from shuffled bags, so every kind comes up once before any comes up twice. After each fault
 * the scheduler waits, as a client would, until every check answers again (200/401), then stays calm
 * for a while before the next one.
 */
import type { Backend, FaultAction } from "./backends";
import type { Instance } from "./fleet";
import type { Rng } from "./rng";
import type { Timeline } from "./timeline";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** After a fault, checks must answer for this long with no failure to count as recovered. */
const STABLE_MS = 2_000;

export interface PlannedFault {
  index: number;
  kind: string;
  /** Calm time before it, ms. */
  calmMs: number;
  rng: Rng;
}

/** Service faults, on every topology. */
export function serviceFaults(fleet: readonly Instance[]): Record<string, FaultAction> {
  return {
    async "worker-kill"(rng, mark) {
      const inst = rng.pick(fleet);
      const pids = inst.workerPids();
      if (pids.length === 0) throw new Error(`instance ${inst.index} has no listening worker`);
      const pid = rng.pick(pids);
      process.kill(pid, "SIGKILL");
      const fresh = await inst.waitForNewWorker(pids, 60_000);
      mark.healed();
      return `SIGKILL worker ${pid} of instance ${inst.index}; the primary started ${fresh}`;
    },
    async "instance-restart"(rng, mark) {
      const inst = rng.pick(fleet);
      await inst.restart();
      mark.healed();
      return `instance ${inst.index} (port ${inst.port}) stopped with SIGTERM and started again`;
    },
  };
}

/** The first `count` faults of the schedule of `rng` over `kinds`. */
export function planFaults(rng: Rng, kinds: readonly string[], calmMs: number, count: number): PlannedFault[] {
  const out: PlannedFault[] = [];
  let bag: string[] = [];
  for (let i = 0; i < count; i++) {
    if (bag.length === 0) {
      bag = [...kinds];
      for (let j = bag.length - 1; j > 0; j--) {
        const k = rng.int(0, j);
        [bag[j], bag[k]] = [bag[k]!, bag[j]!];
      }
    }
    out.push({ index: i, kind: bag.pop()!, calmMs: rng.int(calmMs, 2 * calmMs), rng: rng.fork(1000 + i) });
  }
  return out;
}

export interface FaultRunOptions {
  plan: readonly PlannedFault[];
  actions: Readonly<Record<string, FaultAction>>;
  timeline: Timeline;
  /** Stop starting faults once less than this is left before `endMs` (timeline time). */
  endMs: number;
  recoveryCapMs: number;
  log: (line: string) => void;
}

/** Runs the plan until its time is up; a fault that throws is recorded and ends the schedule. */
export async function runFaults(o: FaultRunOptions): Promise<{ error?: string }> {
  const tl = o.timeline;
  for (const f of o.plan) {
    const room = o.endMs - tl.now();
    // A fault needs its calm time plus room to recover before the load stops.
    if (room < f.calmMs + Math.min(o.recoveryCapMs, 10_000)) break;
    await sleep(f.calmMs);
    const startMs = tl.now();
    const record = { index: f.index, kind: f.kind, detail: "", startMs, healedMs: Number.NaN, failedChecks: 0 };
    tl.faults.push(record);
    o.log(`fault ${f.index} ${f.kind} at ${(startMs / 1000).toFixed(1)} s`);
    try {
      record.detail = await o.actions[f.kind]!(f.rng, { healed: () => (record.healedMs = tl.now()) });
    } catch (err) {
      if (Number.isNaN(record.healedMs)) record.healedMs = tl.now();
      record.detail = `failed: ${(err as Error).message.split("\n")[0]}`;
      o.log(`fault ${f.index} ${f.kind}: ${record.detail}`);
      return { error: `fault ${f.index} (${f.kind}) could not be carried out: ${(err as Error).message}` };
    }
    if (Number.isNaN(record.healedMs)) record.healedMs = tl.now();
    o.log(`fault ${f.index} ${f.kind}: ${record.detail}; healed at ${(record.healedMs / 1000).toFixed(1)} s`);
    // Wait until checks answer again and keep answering (as clients see it), bounded by the cap.
    const capAt = startMs + o.recoveryCapMs;
    while (tl.now() < capAt) {
      const ok =
        tl.lastCheckSuccessStartMs > tl.lastCheckFailureMs &&
        tl.lastCheckSuccessStartMs > record.healedMs &&
        tl.now() - Math.max(tl.lastCheckFailureMs, record.healedMs) >= STABLE_MS;
      if (ok) break;
      await sleep(100);
    }
  }
  return {};
}
