/**
 * Command line of `npm run soak`: parsed with node:util's parseArgs, checked with zod, so a bad value
 * stops the run at once with a message naming the flag.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { z } from "zod";

export const TOPOLOGIES = ["standalone", "sentinel", "cluster", "ipc"] as const;
export type TopologyKind = (typeof TOPOLOGIES)[number];

/** Everything a run is made of. */
export interface SoakOptions {
  /** How long the load runs. @default 600_000 (10 minutes) */
  durationMs: number;
  /** @default "standalone" */
  topology: TopologyKind;
  /** Seed of the fault schedule and of the users' choices. @default a random one (printed) */
  seed: number;
  /** Service instances sharing the backend (ipc: always 1). @default 2 */
  instances: number;
  /** Workers per instance. @default 2 */
  workers: number;
  /** Concurrent virtual users. @default 12 */
  vus: number;
  /** BANGUI_REDIS_COMMAND_TIMEOUT_MS given to the service. @default 500 */
  commandTimeoutMs: number;
  /** A request unanswered after commandTimeoutMs + this is a violation. @default 5000 */
  marginMs: number;
  /** Quiet time before the first fault and between a recovery and the next fault (random in [min, 2*min]). @default 8000 */
  calmMs: number;
  /** A fault whose checks have not all answered again after this is a violation. @default 60_000 */
  recoveryCapMs: number;
  /** Where soak-report.md, the SVG and the raw data go. @default ./soak-out/<topology>-<seed> */
  outDir: string;
}

const duration = z
  .string()
  .regex(/^\d+(ms|s|m)?$/, "a duration like 90s, 10m or 1500ms")
  .transform((s) => {
    const n = Number(/^\d+/.exec(s)![0]);
    if (s.endsWith("ms")) return n;
    if (s.endsWith("m")) return n * 60_000;
    return n * 1000;
  })
  .pipe(z.number().int().min(5_000, "at least 5s").max(24 * 3_600_000));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const Schema = z.object({
  duration: duration.default(600_000),
  topology: z.enum(TOPOLOGIES).default("standalone"),
  seed: int(0, 2 ** 32 - 1).default(() => Math.floor(Math.random() * 2 ** 31)),
  instances: int(1, 8).optional(),
  workers: int(1, 16).default(2),
  vus: int(1, 200).default(12),
  "command-timeout-ms": int(10, 60_000).default(500),
  "margin-ms": int(0, 120_000).default(5_000),
  "calm-ms": int(500, 600_000).default(8_000),
  "recovery-cap-ms": int(1_000, 600_000).default(60_000),
  out: z.string().min(1).optional(),
});

export const USAGE = `npm run soak -- [--duration 10m] [--topology standalone|sentinel|cluster|ipc] [--seed N]
  [--instances K] [--workers W] [--vus N] [--command-timeout-ms 500] [--margin-ms 5000]
  [--calm-ms 8000] [--recovery-cap-ms 60000] [--out DIR]`;

/** Parses argv (without node and the script). Throws an Error naming the flag on a bad value. */
export function parseSoakOptions(argv: string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(
      [...Object.keys(Schema.shape)].map((k) => [k, { type: "string" as const }]),
    ),
    strict: true,
    allowPositionals: false,
  });
  const parsed = Schema.safeParse(values);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`);
    throw new Error(`${lines.join("\n")}\n${USAGE}`);
  }
  const v = parsed.data;
  const instances = v.topology === "ipc" ? 1 : (v.instances ?? 2);
  if (v.topology === "ipc" && v.instances !== undefined && v.instances !== 1) {
    throw new Error("--instances: the ipc backend lives in one instance's primary; use --instances 1 (or leave it out)");
  }
  return {
    durationMs: v.duration,
    topology: v.topology,
    seed: v.seed,
    instances,
    workers: v.workers,
    vus: v.vus,
    commandTimeoutMs: v["command-timeout-ms"],
    marginMs: v["margin-ms"],
    calmMs: v["calm-ms"],
    recoveryCapMs: v["recovery-cap-ms"],
    outDir: v.out ?? join(process.cwd(), "soak-out", `${v.topology}-${v.seed}`),
  };
}
