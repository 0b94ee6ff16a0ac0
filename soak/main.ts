/**
 * `npm run soak`: a bounded chaos run against the built service. Starts its own Redis topology and
 * service instances (free loopback ports, temp dirs), drives a steady load of virtual users, injects a
 * seeded fault schedule, then checks the invariants on what the clients saw and writes the report.
 * Exit 0: no violation; 1: violations (seed and timelines printed); 2: the run could not be carried out.
 * Output goes to stdout (this is a CLI, like the users CLI): progress lines, then the summary.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync, createWriteStream } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, relative } from "node:path";
import { writeUsersFile, ROOT } from "../tests/helpers/service";
import { startBackend, type Backend } from "./backends";
import { checkInvariants, timelineAround, fmt } from "./checker";
import { planFaults, runFaults, serviceFaults } from "./faults";
import { startFleet, type Instance } from "./fleet";
import { startLoad } from "./load";
import { parseSoakOptions, type SoakOptions } from "./options";
import { chartSpec, renderReport } from "./report";
import { createRng } from "./rng";
import { Timeline } from "./timeline";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string): void => void process.stdout.write(`[soak] ${line}\n`);

async function main(): Promise<number> {
  let options: SoakOptions;
  try {
    options = parseSoakOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const o = options;
  const command = `npm run soak -- --duration ${o.durationMs / 1000}s --topology ${o.topology} --seed ${o.seed} --instances ${o.instances} --workers ${o.workers} --vus ${o.vus}`;
  say(command);
  mkdirSync(o.outDir, { recursive: true });
  // A hard stop well past the planned end: whatever hangs, the run ends (process exit kills the children).
  setTimeout(() => {
    say("hard deadline reached: stopping everything");
    process.exit(2);
  }, o.durationMs + 10 * 60_000).unref();

  const rng = createRng(o.seed);
  const loadBefore = loadavg();
  const users = Array.from({ length: Math.max(2, Math.ceil(o.vus / 3)) }, (_, i) => ({
    name: `soak${i}`,
    password: randomBytes(12).toString("base64url"),
  }));
  const usersFile = join(o.outDir, "users.json");
  await writeUsersFile(usersFile, Object.fromEntries(users.map((u) => [u.name, u.password])));

  let backend: Backend | undefined;
  let fleet: Instance[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.all(fleet.map((i) => i.stop(10_000).catch(() => undefined)));
    await backend?.stop().catch(() => undefined);
  };
  process.once("SIGINT", () => void cleanup().finally(() => process.exit(130)));

  let timeline = new Timeline();
  let faultError: string | undefined;
  let planText = "";
  let load: ReturnType<typeof startLoad> | undefined;
  try {
    backend = await startBackend(o.topology, o.outDir);
    say(`backend: ${backend.describe()}`);
    fleet = await startFleet({
      count: o.instances,
      outDir: o.outDir,
      env: {
        ...backend.env,
        BANGUI_WORKERS: String(o.workers),
        BANGUI_USERS_FILE: usersFile,
        BANGUI_REDIS_COMMAND_TIMEOUT_MS: String(o.commandTimeoutMs),
        BANGUI_LOG_LEVEL: "info",
        BANGUI_LOGIN_MAX_FAILURES: "1000000",
        BANGUI_LOGIN_MAX_PER_IP: "1000000",
      },
    });
    say(`instances: ${fleet.map((i) => `${i.url} (workers ${i.workerPids().join(",")})`).join("; ")}`);

    const actions = { ...backend.faults, ...serviceFaults(fleet) };
    const kinds = Object.keys(actions).sort();
    const plan = planFaults(rng.fork(1), kinds, o.calmMs, Math.ceil(o.durationMs / o.calmMs) + 2);
    planText = [`seed ${o.seed}; fault kinds: ${kinds.join(", ")}`,
      ...plan.map((f) => `  ${String(f.index).padStart(2)}: after ${(f.calmMs / 1000).toFixed(1)} s calm, ${f.kind}`)].join("\n");
    say(`fault schedule (replay with --seed ${o.seed}):\n${planText}`);

    timeline = new Timeline(); // time 0 = the load starts
    load = startLoad({
      instances: () => fleet.map((i) => i.url),
      users,
      vus: o.vus,
      timeoutMs: o.commandTimeoutMs + o.marginMs,
      rng: rng.fork(2),
      timeline,
    });
    const faultsDone = runFaults({
      plan, actions, timeline, endMs: o.durationMs, recoveryCapMs: o.recoveryCapMs, log: say,
    });
    const progress = setInterval(() => {
      say(`${(timeline.now() / 1000).toFixed(0)} s: ${timeline.requests.length} requests, ${timeline.faults.length} faults`);
    }, 30_000);
    await sleep(o.durationMs);
    const result = await faultsDone;
    faultError = result.error;
    clearInterval(progress);
    await load.stop();
  } catch (err) {
    say(`the run could not be carried out: ${(err as Error).stack ?? String(err)}`);
    await load?.stop();
    await cleanup();
    return 2;
  }
  await cleanup();

  const check = checkInvariants(timeline, load.sessions, { recoveryCapMs: o.recoveryCapMs, durationMs: timeline.now() });
  const svgName = "soak-timeline.svg";
  const spec = chartSpec(timeline, `${o.topology}, seed ${o.seed}: ${o.instances}x${o.workers} workers, ${o.vus} users, ${timeline.requests.length} requests, ${check.violations.length} violations`);
  writeFileSync(join(o.outDir, "soak-timeline.vl.json"), JSON.stringify(spec));
  try {
    execFileSync(process.execPath, [join(ROOT, "soak", "render-chart.mjs"), join(o.outDir, "soak-timeline.vl.json"), join(o.outDir, svgName)], { stdio: "inherit" });
  } catch (err) {
    say(`chart not rendered: ${(err as Error).message}`);
  }
  const report = renderReport(timeline, check, {
    options: o, backend: backend!.describe(), command, startedAt: new Date(Date.now() - timeline.now()).toISOString(),
    loadBefore, loadAfter: loadavg(), cpus: cpus().length, planText, ...(faultError !== undefined ? { faultError } : {}),
  }, svgName);
  writeFileSync(join(o.outDir, "soak-report.md"), report);
  writeFileSync(join(o.outDir, "violations.json"), JSON.stringify(check.violations, null, 2));
  const raw = createWriteStream(join(o.outDir, "requests.jsonl"));
  for (const r of timeline.requests) raw.write(`${JSON.stringify(r)}\n`);
  await new Promise((r) => raw.end(r));

  const byKind = new Map<string, number[]>();
  for (const f of timeline.faults) {
    if (!byKind.has(f.kind)) byKind.set(f.kind, []);
    if (f.recoveryMs !== undefined) byKind.get(f.kind)!.push(f.recoveryMs);
  }
  say(`done: ${timeline.requests.length} requests, ${timeline.faults.length} faults, ${check.violations.length} violations`);
  for (const [k, list] of byKind) {
    say(`  ${k}: ${timeline.faults.filter((f) => f.kind === k).length} faults, recovery ${list.length === 0 ? "no check failed" : list.map((ms) => `${(ms / 1000).toFixed(1)}s`).join(" ")}`);
  }
  say(`report: ${relative(process.cwd(), join(o.outDir, "soak-report.md")) || o.outDir}`);
  if (faultError !== undefined) say(`fault schedule stopped: ${faultError}`);
  if (check.violations.length > 0) {
    say(`FAIL (seed ${o.seed}; replay: ${command})`);
    for (const v of check.violations.slice(0, 5)) {
      say(`${v.kind} at ${fmt(v.atMs)}: ${v.message}\n${timelineAround(timeline, v)}`);
    }
    return 1;
  }
  if (faultError !== undefined) return 2;
  say(`PASS (seed ${o.seed})`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(2);
  },
);
