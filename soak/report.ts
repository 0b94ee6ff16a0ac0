/**
 * The run's report: `soak-report.md` (figures, fault table, violations with their timelines) and the
 * Vega-Lite spec of the timeline picture (requests per second by status, fault windows shaded, recovery
 * times written on them), rendered to `soak-timeline.svg` by render-chart.mjs.
 */
import { fmt, timelineAround, type CheckResult } from "./checker";
import type { SoakOptions } from "./options";
import type { Timeline, RequestRecord } from "./timeline";

export interface RunInfo {
  options: SoakOptions;
  backend: string;
  command: string;
  startedAt: string;
  loadBefore: number[];
  loadAfter: number[];
  cpus: number;
  /** The schedule as printed at the start. */
  planText: string;
  faultError?: string;
}

export function statusClass(r: RequestRecord): string {
  if (r.status === 0) return r.error === "timeout" ? "no answer (timeout)" : "connection refused/reset";
  if (r.status === 503) return "503";
  if (r.status >= 500) return "other 5xx";
  if (r.status >= 400) return "4xx (401, 404, 429)";
  return "2xx";
}
const CLASSES = ["2xx", "4xx (401, 404, 429)", "503", "connection refused/reset", "no answer (timeout)", "other 5xx"];
const COLORS = ["#4c9a2a", "#4a78c2", "#f0a020", "#b07aa1", "#d62728", "#000000"];

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function shortKind(kind: string): string {
  return kind.replace("instance-restart", "inst-restart").replace("sentinel-failover", "sent-failover");
}

/** Vega-Lite spec of the timeline picture. */
export function chartSpec(timeline: Timeline, title: string): object {
  const counts = new Map<string, number>();
  let maxSec = 0;
  for (const r of timeline.requests) {
    const sec = Math.floor(r.endMs / 1000);
    maxSec = Math.max(maxSec, sec);
    const key = `${sec}|${statusClass(r)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const values = [...counts].map(([k, n]) => {
    const [sec, cls] = k.split("|");
    return { t: Number(sec), status: cls, rps: n };
  });
  const faults = timeline.faults.map((f) => ({
    start: f.startMs / 1000,
    end: Math.max(f.healedMs, f.startMs + 1000) / 1000,
    label: `${shortKind(f.kind)} ${f.recoveryMs === undefined ? (f.unrecovered ? "UNRECOVERED" : "no failed check") : `${(f.recoveryMs / 1000).toFixed(1)} s`}`,
  }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, fontSize: 13 },
    width: Math.min(1400, Math.max(700, maxSec * 2)),
    height: 300,
    background: "white",
    layer: [
      {
        data: { values: faults },
        mark: { type: "rect", color: "#999", opacity: 0.25 },
        encoding: { x: { field: "start", type: "quantitative" }, x2: { field: "end" } },
      },
      {
        data: { values },
        mark: { type: "bar", width: { band: 1 } },
        encoding: {
          x: { field: "t", type: "quantitative", title: "time since start (s)", bin: { step: 1 }, scale: { domain: [0, maxSec + 1] }, axis: { tickMinStep: 10 } },
          y: { field: "rps", type: "quantitative", aggregate: "sum", stack: "zero", title: "requests per second" },
          color: { field: "status", type: "nominal", scale: { domain: CLASSES, range: COLORS }, legend: { title: "answer", orient: "top", labelLimit: 260 } },
          order: { field: "status", sort: "descending" },
        },
      },
      {
        data: { values: faults },
        mark: { type: "text", angle: 270, align: "right", baseline: "middle", dx: -4, dy: 0, fontSize: 9, color: "#333" },
        encoding: { x: { field: "start", type: "quantitative" }, y: { value: 0 }, text: { field: "label" } },
      },
    ],
    resolve: { scale: { x: "shared" } },
  };
}

export function renderReport(timeline: Timeline, check: CheckResult, run: RunInfo, svgName: string): string {
  const o = run.options;
  const reqs = timeline.requests;
  const ops = ["login", "check", "logout", "logout-all", "list", "revoke"];
  const statuses = [...new Set(reqs.map((r) => (r.status === 0 ? `none:${r.error}` : String(r.status))))].sort();
  const table = [
    `| op | ${statuses.join(" | ")} | total |`,
    `|---|${statuses.map(() => "---:").join("|")}|---:|`,
    ...ops.map((op) => {
      const mine = reqs.filter((r) => r.op === op);
      const cells = statuses.map((s) => mine.filter((r) => (r.status === 0 ? `none:${r.error}` : String(r.status)) === s).length);
      return `| ${op} | ${cells.join(" | ")} | ${mine.length} |`;
    }),
  ];
  const lat = reqs.filter((r) => r.op === "check" && r.status !== 0).map((r) => r.endMs - r.startMs).sort((a, b) => a - b);
  const all = reqs.filter((r) => r.status !== 0).map((r) => r.endMs - r.startMs).sort((a, b) => a - b);
  const kinds = [...new Set(timeline.faults.map((f) => f.kind))];
  const perKind = kinds.map((k) => {
    const fs = timeline.faults.filter((f) => f.kind === k);
    const rec = fs.filter((f) => f.recoveryMs !== undefined).map((f) => f.recoveryMs!).sort((a, b) => a - b);
    const s = (ms: number | undefined) => (ms === undefined || Number.isNaN(ms) ? "-" : `${(ms / 1000).toFixed(1)} s`);
    return `| ${k} | ${fs.length} | ${fs.length - rec.length - fs.filter((f) => f.unrecovered).length} | ${s(rec[0])} | ${s(percentile(rec, 50))} | ${s(rec[rec.length - 1])} | ${fs.reduce((n, f) => n + f.failedChecks, 0)} |`;
  });
  const durationS = (timeline.now() / 1000).toFixed(0);
  const v = check.violations;
  const out = [
    `# Soak report: ${o.topology}, seed ${o.seed}`,
    "",
    `**${v.length === 0 ? "PASS" : "FAIL"}**: ${reqs.length} requests, ${timeline.faults.length} faults, ${v.length} violation(s).`,
    "",
    `- command: \`${run.command}\``,
    `- replay: same command (the seed fixes the fault kinds, their order and parameters, and the users' choices; timings follow the machine)`,
    `- started ${run.startedAt}, load ran ${durationS} s; ${o.instances} instance(s) x ${o.workers} worker(s), ${o.vus} virtual users`,
    `- backend: ${run.backend}`,
    `- service: BANGUI_REDIS_COMMAND_TIMEOUT_MS=${o.commandTimeoutMs}; a request unanswered after ${o.commandTimeoutMs + o.marginMs} ms is a violation`,
    `- machine: ${run.cpus} CPUs, load average ${run.loadBefore.map((x) => x.toFixed(2)).join(" ")} before, ${run.loadAfter.map((x) => x.toFixed(2)).join(" ")} after (shared machine: recovery times include CPU contention)`,
    "",
    `![timeline](${svgName})`,
    "",
    "## Requests by operation and status",
    "",
    ...table,
    "",
    `Latency of answered checks: p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms, max ${(lat[lat.length - 1] ?? Number.NaN).toFixed(0)} ms; ` +
      `of all answered requests: p99 ${percentile(all, 99).toFixed(1)} ms, max ${(all[all.length - 1] ?? Number.NaN).toFixed(0)} ms.`,
    "",
    `Sessions that answered 401 without anyone having ended them (lost in a restart or failover, which is allowed: never a stale accept): ${check.lostSessions} checks.`,
    `Requests orphaned by a service fault (in flight while a worker was SIGKILLed or an instance restarted, never answered; the client's timeout ended them): ${check.orphaned.length}${check.orphaned.length > 0 ? ` (#${check.orphaned.slice(0, 10).join(", #")})` : ""}.`,
    `Checks that accepted a session whose login overlapped a logout-all of its user in time (not a violation: seen from the clients, the login may have taken effect after the logout-all): ${check.raceSurvivors.length}.`,
    "",
    "## Recovery per fault kind",
    "",
    "Recovery: from the fault's start to the first check answering again (200/401) after the last one that did not (503 or no answer).",
    "",
    "| fault | count | no check failed | min | median | max | checks failed |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...perKind,
    "",
    "## Faults",
    "",
    "| # | kind | start | healed | recovery | checks failed | what was done |",
    "|---:|---|---:|---:|---:|---:|---|",
    ...timeline.faults.map((f) =>
      `| ${f.index} | ${f.kind} | ${fmt(f.startMs)} | ${fmt(f.healedMs)} | ${f.recoveryMs === undefined ? (f.unrecovered ? "UNRECOVERED" : "-") : `${(f.recoveryMs / 1000).toFixed(2)} s`} | ${f.failedChecks} | ${f.detail} |`),
    "",
    "## Schedule (as printed at the start)",
    "",
    "```",
    run.planText,
    "```",
    "",
    "## Violations",
    "",
    ...(run.faultError !== undefined ? [`The fault schedule stopped: ${run.faultError}`, ""] : []),
    ...(v.length === 0
      ? ["None."]
      : v.slice(0, 20).flatMap((x) => [`### ${x.kind} at ${fmt(x.atMs)}`, "", x.message, "", "```", timelineAround(timeline, x), "```", ""])),
    ...(v.length > 20 ? [`... and ${v.length - 20} more (see violations.json).`] : []),
    "",
  ];
  return out.join("\n");
}
