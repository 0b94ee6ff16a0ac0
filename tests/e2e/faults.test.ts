/**
 * Faults under a running, BUILT service (two workers, one private AOF redis-server, real processes,
 * no mocks): Redis killed in the middle of a run of requests and restarted, Redis frozen with SIGSTOP
 * longer than the command timeout, and a worker SIGKILLed under load. The service must fail closed
 * (503, never a 200 while Redis is gone), answer fast (command timeout plus a margin, never hang),
 * keep its workers alive through a Redis outage, and recover by itself.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import {
  eventually,
  http,
  login,
  mapLimit,
  PATIENCE_MS,
  removeTempDir,
  startService,
  stopAll,
  tempDir,
  writeUsersFile,
  type ServiceHandle,
} from "../helpers/service";

jest.setTimeout(300_000);

const COMMAND_TIMEOUT_MS = 300;
/**
 * Longest acceptable time for a 503: the command timeout plus a margin for the hops and the machine's own
 * slowness, measured (not assumed): at least 700 ms, and 3x the slowest healthy check seen just before the
 * fault, so a loaded machine widens it while a request waiting on a frozen Redis (a hang) still exceeds it.
 */
let max503Ms = COMMAND_TIMEOUT_MS + 700;
function measureMargin(healthy: Sample[]): void {
  const slowest = Math.max(0, ...healthy.filter((s) => s.status === 200).map((s) => s.end - s.start));
  max503Ms = COMMAND_TIMEOUT_MS + Math.max(700, 3 * slowest);
}

let redis: RedisServerHandle;
let dir: string;
let service: ServiceHandle;
/** Set while a test has Redis killed: afterEach restarts it, so one failure does not cascade into the next tests. */
let redisDown = false;

/** One session check on a fresh connection, timed; `error` instead of `status` when the request failed. */
interface Sample {
  start: number;
  end: number;
  status?: number;
  error?: string;
}

async function timed(method: string, path: string, token?: string): Promise<Sample> {
  const start = Date.now();
  try {
    // The client timeout is far above max503Ms: a hang shows as an error, not as a stuck test.
    const res = await http(service.url, method, path, { ...(token === undefined ? {} : { cookie: token }), timeoutMs: 5000 });
    return { start, end: Date.now(), status: res.status };
  } catch (err) {
    return { start, end: Date.now(), error: (err as Error).message };
  }
}

const check = (token: string) => timed("GET", "/api/auth/session", token);

/**
 * Session checks over `tokens` (round robin), `concurrency` at a time, until `done()` says stop (bounded by
 * PATIENCE_MS, a hang guard). `samples` fills while it runs, for `until` to watch.
 */
async function loadLoop(tokens: string[], concurrency: number, done: () => boolean, samples: Sample[] = []): Promise<Sample[]> {
  const end = Date.now() + PATIENCE_MS;
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!done() && Date.now() < end) samples.push(await check(tokens[n++ % tokens.length]!));
    }),
  );
  return samples;
}

/** Waits until `cond` holds (checked every 20 ms; PATIENCE_MS as a hang guard). */
async function until(cond: () => boolean): Promise<void> {
  const giveUpAt = Date.now() + PATIENCE_MS;
  while (!cond()) {
    if (Date.now() > giveUpAt) throw new Error("condition not reached within PATIENCE_MS");
    await sleep(20);
  }
}

function workerDeaths(): number {
  return service.logs().filter((l) => l.msg === "worker died; restarting it").length;
}

beforeAll(async () => {
  redis = await startRedisServer({ appendonly: true });
  dir = tempDir("faults");
  await writeUsersFile(join(dir, "users.json"), { alice: "alice-password-1", bob: "bob-password-1" });
  service = await startService({
    env: {
      BANGUI_REDIS_URL: redis.url,
      BANGUI_WORKERS: "2",
      BANGUI_USERS_FILE: join(dir, "users.json"),
      BANGUI_KEY_PREFIX: "e2e-faults:",
      BANGUI_REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
      BANGUI_REDIS_CONNECT_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
    },
  });
  expect(service.workerPids()).toHaveLength(2);
});

afterEach(async () => {
  if (redisDown) {
    redisDown = false;
    await redis.restart();
    await eventually(async () => (await http(service.url, "GET", "/readyz")).status === 200, PATIENCE_MS, 50);
  }
});

afterAll(async () => {
  redis?.resume?.();
  await stopAll([service]);
  await redis?.stop();
  if (dir) removeTempDir(dir);
});

test("Redis killed mid-run: 200 before, only fast 503s after (logout too), no worker exits; restarted on its AOF, the sessions are back and a logout is still a logout", async () => {
  const pids = service.workerPids().sort();
  const deaths = workerDeaths();
  const sessions = await Promise.all([
    login(service.url, "alice", "alice-password-1"),
    login(service.url, "alice", "alice-password-1"),
    login(service.url, "bob", "bob-password-1"),
  ]);
  const loggedOut = await login(service.url, "bob", "bob-password-1");
  expect((await http(service.url, "POST", "/api/auth/logout", { cookie: loggedOut })).status).toBe(204);
  expect((await check(loggedOut)).status).toBe(401);
  // Warm both workers (and their near-caches) with every session.
  for (const t of sessions) for (let i = 0; i < 4; i++) expect((await check(t)).status).toBe(200);

  let stop = false;
  const samples: Sample[] = [];
  const run = loadLoop(sessions, 4, () => stop, samples);
  // Observed, not slept: enough healthy answers before the kill, and enough requests after it.
  await until(() => samples.filter((s) => s.status === 200).length > 8);
  measureMargin(samples);
  redisDown = true;
  await redis.kill("SIGKILL");
  const killed = Date.now();
  // A worker learns of the kill when its event loop handles the closed socket (later on a loaded machine), and a
  // near-cache hit stops within one command timeout: from killed + max503Ms on, only 503 is right.
  const failClosedFrom = killed + max503Ms;
  await until(() => samples.filter((s) => s.start >= failClosedFrom).length > 8);
  stop = true;
  await run;

  expect(samples.filter((s) => s.error !== undefined)).toEqual([]); // no hang, no reset
  expect(samples.filter((s) => s.status !== 200 && s.status !== 503)).toEqual([]);
  expect(samples.filter((s) => s.end < killed).every((s) => s.status === 200)).toBe(true);
  expect(samples.filter((s) => s.end < killed).length).toBeGreaterThan(5);
  const after = samples.filter((s) => s.start >= failClosedFrom);
  expect(after.length).toBeGreaterThan(5);
  expect(after.filter((s) => s.status !== 503)).toEqual([]); // fail closed: no 200 without Redis
  const slow503 = samples.filter((s) => s.status === 503 && s.end - s.start > max503Ms);
  expect(slow503).toEqual([]);
  const first503 = Math.min(...samples.filter((s) => s.status === 503).map((s) => s.end));
  const worst503 = Math.max(...samples.filter((s) => s.status === 503).map((s) => s.end - s.start));

  // Logout during the outage must not pretend it worked.
  const out = await timed("POST", "/api/auth/logout", sessions[2]);
  expect(out.status).toBe(503);
  expect(out.end - out.start).toBeLessThanOrEqual(max503Ms);
  const ready = await timed("GET", "/readyz");
  expect(ready.status).toBe(503);
  expect(ready.end - ready.start).toBeLessThanOrEqual(max503Ms);

  // No worker went down with Redis.
  expect(service.workerPids().sort()).toEqual(pids);
  expect(workerDeaths()).toBe(deaths);
  for (const pid of pids) expect(() => process.kill(pid, 0)).not.toThrow();

  const restartAt = Date.now();
  await redis.restart();
  redisDown = false;
  const upAt = Date.now();
  const back = await eventually(async () => (await Promise.all(sessions.map(check))).every((s) => s.status === 200), PATIENCE_MS, 50);
  const recoveredMs = Date.now() - restartAt;
  const fromUpMs = Date.now() - upAt;
  expect(back).toBe(true);
  expect((await timed("GET", "/readyz")).status).toBe(200);
  // AOF kept the logout from before the outage, and the failed logout did not end the session.
  expect((await check(loggedOut)).status).toBe(401);
  expect((await check(sessions[2]!)).status).toBe(200);
  // Both workers, several times each.
  for (let i = 0; i < 4; i++) for (const t of sessions) expect((await check(t)).status).toBe(200);
  expect(service.workerPids().sort()).toEqual(pids);
  expect(workerDeaths()).toBe(deaths);

  console.log(
    `kill: ${samples.length} checks, first 503 ${first503 - killed} ms after the kill returned, ` +
      `slowest 503 ${worst503} ms, logout 503 in ${out.end - out.start} ms; restart -> all 200 in ${recoveredMs} ms (${fromUpMs} ms after redis-server answered PING)`,
  );
});

// The service's near-cache serves a local hit only while its subscriber answered within one command timeout
// (the factory pings it three times per command timeout): a frozen Redis stops cached answers that long after
// its last reply, the same bound an uncached read has.
test("Redis frozen with SIGSTOP past the command timeout: reads that need Redis are fast 503s, /readyz 503, cached sessions fail closed within one command timeout; after SIGCONT it recovers by itself", async () => {
  const token = await login(service.url, "alice", "alice-password-1");
  const uncached = await login(service.url, "bob", "bob-password-1"); // never read: not in any near-cache
  const healthy: Sample[] = [];
  for (let i = 0; i < 8; i++) healthy.push(await check(token));
  expect(healthy.map((s) => s.status)).toEqual(Array(8).fill(200));
  measureMargin(healthy);
  const pids = service.workerPids().sort();

  redis.pause();
  const pausedAt = Date.now();
  let direct: Sample[];
  let ready: Sample;
  let warm: Sample[];
  try {
    // Fresh connections: both workers are asked, some of them more than once.
    direct = await mapLimit([uncached, uncached, randomBytes(32).toString("base64url") /* well-formed, unknown */, uncached], 2, check);
    ready = await timed("GET", "/readyz");
    let stop = false;
    warm = [];
    const run = loadLoop([token], 2, () => stop, warm);
    // Until several checks started well after the point from which only 503s are acceptable have answered.
    await until(() => warm.filter((s) => s.start >= pausedAt + max503Ms).length > 4);
    stop = true;
    await run;
  } finally {
    redis.resume();
  }
  const resumedAt = Date.now();

  expect(direct.filter((s) => s.error !== undefined)).toEqual([]);
  expect(direct.map((s) => s.status)).toEqual([503, 503, 503, 503]);
  const worst = Math.max(...direct.map((s) => s.end - s.start));
  expect(worst).toBeLessThanOrEqual(max503Ms);
  expect(ready.status).toBe(503);
  expect(ready.end - ready.start).toBeLessThanOrEqual(max503Ms);
  // The cached session: never a hang or an error, and once the ping has surely failed, only 503s.
  expect(warm.filter((s) => s.error !== undefined || (s.status !== 200 && s.status !== 503))).toEqual([]);
  expect(warm.filter((s) => s.status === 503 && s.end - s.start > max503Ms)).toEqual([]);
  // A reply already on its way when the SIGSTOP landed can be handled a little after pausedAt (later on a
  // loaded machine): the measured margin, not a fixed 100 ms.
  const failClosedFrom = pausedAt + max503Ms;
  const late = warm.filter((s) => s.start >= failClosedFrom);
  expect(late.length).toBeGreaterThan(3);
  expect(late.filter((s) => s.status !== 503)).toEqual([]);
  const last200 = Math.max(pausedAt, ...warm.filter((s) => s.status === 200).map((s) => s.end));

  const back = await eventually(async () => (await check(token)).status === 200 && (await check(uncached)).status === 200, PATIENCE_MS, 50);
  const recoveredMs = Date.now() - resumedAt;
  expect(back).toBe(true);
  for (let i = 0; i < 4; i++) expect((await check(token)).status).toBe(200);
  expect((await timed("GET", "/readyz")).status).toBe(200);
  expect(service.workerPids().sort()).toEqual(pids);

  console.log(
    `pause: uncached checks 503 in <= ${worst} ms, /readyz 503 in ${ready.end - ready.start} ms, ` +
      `cached session served until ${last200 - pausedAt} ms into the freeze, then 503; resume -> 200 in ${recoveredMs} ms`,
  );
});

test("a worker SIGKILLed under load is replaced; requests keep being served (a few resets at most, no 5xx), then all 200", async () => {
  const tokens = await Promise.all([login(service.url, "alice", "alice-password-1"), login(service.url, "bob", "bob-password-1")]);
  const before = service.workerPids();
  expect(before).toHaveLength(2);
  const victim = before[0]!;
  const replaced = () => service.workerPids().length === 2 && !service.workerPids().includes(victim);

  let replacedAt = 0;
  let killedAt = 0;
  const samples: Sample[] = [];
  // Stops once several checks that started after the replacement have answered (observed, not timed).
  const run = loadLoop(tokens, 4, () => replacedAt !== 0 && samples.filter((s) => s.start > replacedAt).length > 8, samples);
  await until(() => samples.filter((s) => s.status === 200).length > 8);
  process.kill(victim, "SIGKILL");
  killedAt = Date.now();
  await service.waitForLog((l) => l.msg === "worker died; restarting it" && l.workerPid === victim);
  await service.waitForLog(
    (l) => l.component === "primary" && l.msg === "worker listening" && !before.includes(Number(l.workerPid)),
  );
  replacedAt = Date.now();
  await run;

  expect(replaced()).toBe(true);
  const errors = samples.filter((s) => s.error !== undefined);
  // The requests in flight on the victim (4 runners), plus a few connections the primary may hand it before it
  // notices the death. Seen: ECONNRESET, and a client timeout (5 s): Node's cluster round-robin primary keeps a
  // connection it handed to a worker that died before acknowledging it, open and unserved (a Node cluster limitation).
  expect(errors.length).toBeLessThanOrEqual(8);
  expect(samples.filter((s) => s.status !== undefined && s.status !== 200)).toEqual([]); // no 5xx, no 401
  expect(samples.filter((s) => s.start > killedAt && s.status === 200).length).toBeGreaterThan(5);
  for (let i = 0; i < 8; i++) for (const t of tokens) expect((await check(t)).status).toBe(200);

  console.log(
    `worker kill: ${samples.length} checks, ${errors.length} connection errors (${[...new Set(errors.map((e) => e.error))].join("; ")}), replaced in ${replacedAt - killedAt} ms`,
  );
});
