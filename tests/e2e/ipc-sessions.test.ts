/**
 * The built service with BANGUI_WORKERS=4 and no Redis: the ipc backend (the primary holds the sessions,
 * every worker a near-cache kept coherent by acknowledged invalidations). Requests use a fresh connection
 * each, so the cluster's round-robin spreads them over all the workers.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  eventually,
  http,
  login,
  mapLimit,
  MAIN_JS,
  removeTempDir,
  runNode,
  runUsersCli,
  startService,
  stopAll,
  tempDir,
  writeUsersFile,
  type ServiceHandle,
} from "../helpers/service";

jest.setTimeout(120_000);

const SESSIONS = 200;
let dir: string;
let S: ServiceHandle;
const extra: ServiceHandle[] = [];

function envFor(more: Record<string, string> = {}): Record<string, string> {
  return {
    BANGUI_WORKERS: "4",
    BANGUI_USERS_FILE: join(dir, "users.json"),
    BANGUI_LOGIN_MAX_PER_IP: "100000",
    // A loaded CI machine: the fail-closed bound is not what these tests measure.
    BANGUI_IPC_COMMAND_TIMEOUT_MS: "5000",
    // debug: the access log of session checks shows which worker answered.
    BANGUI_LOG_LEVEL: "debug",
    ...more,
  };
}

const check = async (s: ServiceHandle, token: string) => (await http(s.url, "GET", "/api/auth/session", { token })).status;

async function statuses(s: ServiceHandle, token: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await check(s, token));
  return out;
}

/** Pids of the workers of `service` that logged a completed request to `path`. */
function pidsServing(service: ServiceHandle, path: string): Set<number> {
  const pids = new Set<number>();
  for (const l of service.logs()) {
    const req = l.req as { path?: string } | undefined;
    if (l.component === "http" && req?.path === path && l.res !== undefined) pids.add(Number(l.pid));
  }
  return pids;
}

function counter(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  dir = tempDir("ipc");
  await writeUsersFile(join(dir, "users.json"), { alice: "alice-password-1", racer: "racer-password-1", carol: "carol-password-1" });
  S = await startService({ env: envFor(), startTimeoutMs: 60_000 });
});

afterAll(async () => {
  await stopAll([S, ...extra]);
  if (dir) removeTempDir(dir);
});

test("BANGUI_WORKERS=4 without Redis starts on the ipc backend and a login is valid on every worker", async () => {
  expect(S.workerPids()).toHaveLength(4);
  expect(S.logs().find((l) => l.msg === "starting")?.backend).toBe("ipc");
  expect((await http(S.url, "GET", "/readyz")).status).toBe(200); // a round trip to the primary
  const token = await login(S.url, "alice", "alice-password-1");
  expect(await statuses(S, token, 8)).toEqual(Array(8).fill(200));
  expect(await eventually(async () => pidsServing(S, "/api/auth/session").size === 4, 5000)).toBe(true);

  const out = await http(S.url, "POST", "/api/auth/logout", { token });
  expect(out.status).toBe(204);
  expect(await statuses(S, token, 8)).toEqual(Array(8).fill(401));
});

test(`${SESSIONS} logouts racing checks on other workers: 0 stale accepts after the 204, near-caches really hit`, async () => {
  const before = (await http(S.url, "GET", "/metrics")).text;
  const tokens = await mapLimit(Array.from({ length: SESSIONS }), 8, () => login(S.url, "racer", "racer-password-1"));
  // Warm: each session is read by several workers, so several near-caches hold it.
  const warm = await mapLimit(tokens, 16, async (t) => statuses(S, t, 4));
  expect(warm.flat().every((s) => s === 200)).toBe(true);

  const results = await mapLimit(tokens, 16, async (token) => {
    const [logout, concurrent] = await Promise.all([http(S.url, "POST", "/api/auth/logout", { token }), check(S, token)]);
    const after = await statuses(S, token, 4);
    return { logout: logout.status, concurrent, after };
  });
  expect(results.map((r) => r.logout).filter((s) => s !== 204)).toEqual([]);
  expect(results.map((r) => r.concurrent).filter((s) => s !== 200 && s !== 401)).toEqual([]);
  expect(results.flatMap((r) => r.after).filter((s) => s !== 401)).toEqual([]);

  const after = (await http(S.url, "GET", "/metrics")).text;
  const delta = (series: string) => counter(after, series) - counter(before, series);
  // The warm-up was served by near-caches (4 workers, 4 checks per session: most are local hits) ...
  expect(delta("bangui_near_cache_hits_total")).toBeGreaterThan(SESSIONS);
  // ... and every logout reached the other workers, each of which acknowledged it.
  expect(delta("bangui_ipc_invalidations_sent_total")).toBeGreaterThanOrEqual(SESSIONS * 3);
  expect(counter(after, "bangui_ipc_invalidations_acked_total")).toBe(counter(after, "bangui_ipc_invalidations_sent_total"));
  expect(after).toContain("bangui_ipc_roundtrip_seconds_bucket");
});

test("a worker killed with SIGKILL is replaced and every session is still valid on every worker", async () => {
  const tokens = await mapLimit(Array.from({ length: 10 }), 4, () => login(S.url, "alice", "alice-password-1"));
  for (const t of tokens) expect(await statuses(S, t, 2)).toEqual([200, 200]);
  const pids = S.workerPids();
  const victim = pids[1]!;
  process.kill(victim, "SIGKILL");
  await S.waitForLog((l) => l.msg === "worker listening" && l.component === "primary" && !pids.includes(Number(l.workerPid)), 30_000);
  expect(S.workerPids()).not.toContain(victim);
  expect(S.workerPids()).toHaveLength(4);
  for (const t of tokens) expect(await statuses(S, t, 4)).toEqual([200, 200, 200, 200]);
  // Logouts still work with the replacement among the workers (it acknowledges invalidations too).
  for (const t of tokens) expect((await http(S.url, "POST", "/api/auth/logout", { token: t })).status).toBe(204);
  for (const t of tokens) expect(await statuses(S, t, 4)).toEqual([401, 401, 401, 401]);
});

test("removing a user with the users CLI ends that user's sessions on every worker", async () => {
  const token = await login(S.url, "carol", "carol-password-1");
  expect(await statuses(S, token, 4)).toEqual([200, 200, 200, 200]);
  const r = await runUsersCli(["remove", "carol"], { BANGUI_USERS_FILE: join(dir, "users.json"), BANGUI_WORKERS: "4" });
  expect(r.code).toBe(0);
  expect(await eventually(async () => (await statuses(S, token, 8)).every((s) => s === 401), 10_000)).toBe(true);
});

test("the per-IP login limit is shared by the workers: random usernames from one address get 429", async () => {
  const limited = await startService({ env: envFor({ BANGUI_LOGIN_MAX_PER_IP: "6", BANGUI_LOG_LEVEL: "info" }), startTimeoutMs: 60_000 });
  extra.push(limited);
  const statusesOf = await mapLimit(Array.from({ length: 10 }), 1, async (_x, i) => {
    const res = await http(limited.url, "POST", "/api/auth/login", { body: { username: `nobody-${i}-${Math.random().toString(36).slice(2, 8)}`, password: "x-password-1" } });
    return res.status;
  });
  expect(statusesOf).toEqual([401, 401, 401, 401, 401, 401, 429, 429, 429, 429]);
  await limited.stop();
});

test("graceful restart with BANGUI_SESSIONS_FILE keeps every session and every logout; the file is 0600 and holds no token", async () => {
  const file = join(dir, "state", "sessions.json");
  const env = envFor({ BANGUI_SESSIONS_FILE: file, BANGUI_WORKERS: "2", BANGUI_LOG_LEVEL: "info" });
  const first = await startService({ env, startTimeoutMs: 60_000 });
  extra.push(first);
  const tokens = await mapLimit(Array.from({ length: 6 }), 3, () => login(first.url, "alice", "alice-password-1"));
  const [gone, ...kept] = tokens as [string, ...string[]];
  expect((await http(first.url, "POST", "/api/auth/logout", { token: gone })).status).toBe(204);
  expect((await first.stop()).code).toBe(0);

  expect(statSync(file).mode & 0o777).toBe(0o600);
  const text = readFileSync(file, "utf8");
  for (const t of tokens) expect(text).not.toContain(t);
  expect(text).not.toContain("alice-password-1");

  const second = await startService({ env, startTimeoutMs: 60_000 });
  extra.push(second);
  for (const t of kept) expect(await statuses(second, t, 2)).toEqual([200, 200]);
  expect(await statuses(second, gone, 2)).toEqual([401, 401]);
  await second.stop();
});

test("a corrupt sessions file stops the start once with a message naming BANGUI_SESSIONS_FILE (no crash loop)", async () => {
  const file = join(dir, "corrupt-sessions.json");
  writeFileSync(file, '{"not": "ours", "secret": "do-not-echo"}');
  for (const backend of ["ipc", "memory"]) {
    const workers = backend === "ipc" ? "2" : "1";
    const r = await runNode(MAIN_JS, [], {
      env: { ...envFor({ BANGUI_SESSIONS_FILE: file, BANGUI_SESSION_BACKEND: backend, BANGUI_WORKERS: workers }), BANGUI_PORT: "0" },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("BANGUI_SESSIONS_FILE");
    expect(r.stderr + r.stdout).not.toContain("do-not-echo");
    expect(r.stdout).not.toContain("worker forked");
    expect(r.stdout).not.toContain('"listening"');
  }
});
