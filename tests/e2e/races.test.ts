/**
 * Races between instances sharing one private redis-server, through the built service:
 * - logout vs check: 200 sessions, each logged out on one instance while it is checked on another at
 *   the same moment; once the logout has answered 204, no instance accepts the token (0 stale accepts).
 * - resurrection: with the idle timeout on, requests keep "touching" a session on one instance while it
 *   is logged out on another; afterwards the session is gone for good (401 everywhere, no Redis key).
 */
import { join } from "node:path";
import Redis from "ioredis";
import { createKeySpace, sha256Hex } from "../../src/cache/keys";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import {
  http,
  login,
  mapLimit,
  removeTempDir,
  startServices,
  stopAll,
  tempDir,
  writeUsersFile,
  type ServiceHandle,
} from "../helpers/service";

jest.setTimeout(60_000);

const PREFIX = "e2e-race:";
const SESSIONS = 200;
let redis: RedisServerHandle;
let client: Redis;
let dir: string;
let A: ServiceHandle; // one worker
let C: ServiceHandle; // three workers
let I1: ServiceHandle; // idle timeout on
let I2: ServiceHandle; // idle timeout on

const check = async (s: ServiceHandle, token: string) => (await http(s.url, "GET", "/api/auth/session", { token })).status;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  dir = tempDir("race");
  const usersFile = join(dir, "users.json");
  await writeUsersFile(usersFile, { racer: "racer-password-1", idler: "idler-password-1" });
  const base = { BANGUI_REDIS_URL: redis.url, BANGUI_USERS_FILE: usersFile, BANGUI_KEY_PREFIX: PREFIX };
  const idle = { ...base, BANGUI_SESSION_IDLE_SECONDS: "2", BANGUI_SESSION_TTL_SECONDS: "60" };
  [A, C, I1, I2] = await startServices([
    { env: { ...base, BANGUI_WORKERS: "1" } },
    { env: { ...base, BANGUI_WORKERS: "3" } },
    { env: { ...idle, BANGUI_WORKERS: "1" } },
    { env: { ...idle, BANGUI_WORKERS: "1" } },
  ]);
});

afterAll(async () => {
  await stopAll([A, C, I1, I2]);
  client?.disconnect();
  await redis?.stop();
  if (dir) removeTempDir(dir);
});

test(`${SESSIONS} logouts racing checks on another instance: 0 stale accepts after the 204`, async () => {
  const tokens = await mapLimit(Array.from({ length: SESSIONS }), 8, (_x, i) =>
    login(i % 2 === 0 ? A.url : C.url, "racer", "racer-password-1"),
  );
  // Every session is known (and cached, where a cache exists) on both sides before the race.
  const warm = await mapLimit(tokens, 16, async (t) => [await check(A, t), await check(C, t)]);
  expect(warm.flat().every((s) => s === 200)).toBe(true);

  const results = await mapLimit(tokens, 16, async (token, i) => {
    const [logoutOn, checkOn] = i % 2 === 0 ? [A, C] : [C, A];
    const [logout, concurrent] = await Promise.all([
      http(logoutOn.url, "POST", "/api/auth/logout", { token }),
      check(checkOn, token), // the same moment: 200 or 401 are both right
    ]);
    const after = [await check(checkOn, token), await check(logoutOn, token), await check(checkOn, token)];
    return { logout: logout.status, concurrent, after };
  });

  expect(results.map((r) => r.logout).filter((s) => s !== 204)).toEqual([]);
  expect(results.map((r) => r.concurrent).filter((s) => s !== 200 && s !== 401)).toEqual([]);
  const stale = results.flatMap((r) => r.after).filter((s) => s !== 401);
  expect(stale).toEqual([]);
  const ids = tokens.map((t) => createKeySpace(PREFIX).session(sha256Hex(t)));
  expect(await client.exists(...ids)).toBe(0);
});

test("a session logged out while another instance keeps touching it (idle timeout on) stays gone", async () => {
  const token = await login(I1.url, "idler", "idler-password-1");
  const key = createKeySpace(PREFIX).session(sha256Hex(token));
  const lastSeen = async () => (JSON.parse((await client.get(key)) ?? "{}") as { lastSeenAt?: number }).lastSeenAt;
  const loginSeenAt = await lastSeen();
  expect(loginSeenAt).toEqual(expect.any(Number));

  let loggedOutAt = Infinity;
  let stop = false;
  const acceptedAfterLogout: number[] = [];
  const touches: number[] = [];
  // Four loops of checks on I1, bounded in count and stopped by the test, each a fresh connection.
  const toucher = async () => {
    for (let n = 0; n < 400 && !stop; n++) {
      const startedAt = Date.now();
      const status = await check(I1, token);
      touches.push(status);
      if (status === 200 && startedAt > loggedOutAt) acceptedAfterLogout.push(startedAt - loggedOutAt);
    }
  };
  const loops = Promise.all([toucher(), toucher(), toucher(), toucher()]);

  // Idle window 2 s: a touch writes at most every 0.5 s, so let a few land before the logout.
  await sleep(1200);
  // The touches really write to Redis (conditionally, the race this test is about).
  expect(await lastSeen()).toBeGreaterThan(loginSeenAt!);
  const out = await http(I2.url, "POST", "/api/auth/logout", { token });
  expect(out.status).toBe(204);
  loggedOutAt = Date.now();
  await sleep(1200);
  stop = true;
  await loops;

  expect(touches.filter((s) => s === 200).length).toBeGreaterThan(0);
  expect(acceptedAfterLogout).toEqual([]);
  expect(await check(I1, token)).toBe(401);
  expect(await check(I2, token)).toBe(401);
  expect(await client.exists(key)).toBe(0);
  // Once more after a full touch interval: nothing brought it back.
  await sleep(600);
  expect(await client.exists(key)).toBe(0);
  expect(await check(I1, token)).toBe(401);
  expect(await check(I2, token)).toBe(401);
});

test("with the idle timeout on, a session left alone for the idle window ends; one in use does not", async () => {
  const idleToken = await login(I1.url, "idler", "idler-password-1");
  const usedToken = await login(I2.url, "idler", "idler-password-1");
  for (let i = 0; i < 6; i++) {
    await sleep(500);
    expect(await check(i % 2 === 0 ? I1 : I2, usedToken)).toBe(200);
  }
  // 3 s without a request: past the 2 s idle window.
  expect(await check(I1, idleToken)).toBe(401);
  expect(await check(I2, idleToken)).toBe(401);
  expect(await check(I1, usedToken)).toBe(200);
});
