/**
 * Races between instances sharing one private redis-server, through the built service:
 * - logout vs check: 200 sessions, each logged out on one instance while it is checked on another at
 *   the same moment; once the logout has answered 204, no instance accepts the token (0 stale accepts).
 * - resurrection: with the idle timeout on, requests "touch" sessions on two instances while they are
 *   logged out on a third; afterwards every session is gone for good (401 everywhere, no Redis key).
 *   An unconditional touch (a plain SET) brings dozens of the 150 sessions back in every run: the test
 *   catches it; the conditional one (SET XX / Lua) never does.
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
/** Sessions of the resurrection test: each race hits the get-then-write window of a touch rarely, so many. */
const TOUCHED = 150;
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
  // Hundreds of logins from one address: above the default per-IP login limit.
  const base = { BANGUI_REDIS_URL: redis.url, BANGUI_USERS_FILE: usersFile, BANGUI_KEY_PREFIX: PREFIX, BANGUI_LOGIN_MAX_PER_IP: "100000" };
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

test(`resurrection: ${TOUCHED} sessions (idle timeout on), each logged out on one instance while touches hit it on two others, stay gone`, async () => {
  const tokens = await mapLimit(Array.from({ length: TOUCHED }), 8, () => login(I1.url, "idler", "idler-password-1"));
  const keys = tokens.map((t) => createKeySpace(PREFIX).session(sha256Hex(t)));
  const lastSeen = async (key: string) => (JSON.parse((await client.get(key)) ?? "{}") as { lastSeenAt?: number }).lastSeenAt;
  const loginSeenAt = await lastSeen(keys[0]!);
  // Past a quarter of the idle window (2 s): the next check of each session writes a touch.
  await sleep(600);
  expect(await check(I1, tokens[0]!)).toBe(200);
  expect(await lastSeen(keys[0]!)).toBeGreaterThan(loginSeenAt!); // touches really write to Redis

  let acceptedAfterLogout = 0;
  const raced = await mapLimit(tokens, 12, async (token) => {
    // A burst of touches on I1 and on the 3-worker instance C (the session carries its idle timeout)
    // at the moment of the logout on I2, then a few more once the logout answered.
    const [logout] = await Promise.all([
      http(I2.url, "POST", "/api/auth/logout", { token }),
      check(I1, token),
      check(I1, token),
      check(C, token),
      check(C, token),
    ]);
    for (const s of [I1, C, I1, C]) if ((await check(s, token)) !== 401) acceptedAfterLogout++;
    return logout.status;
  });
  expect(raced.filter((s) => s !== 204)).toEqual([]);
  expect(acceptedAfterLogout).toBe(0);

  // The touches have ended: no session came back, now or a little later.
  expect(await client.exists(...keys)).toBe(0);
  await sleep(300);
  expect(await client.exists(...keys)).toBe(0);
  const after = await mapLimit(tokens, 12, async (t) => [await check(I1, t), await check(I2, t), await check(C, t)]);
  expect(after.flat().filter((s) => s !== 401)).toEqual([]);
});
