/**
 * The per-user session index under concurrent logins, through the built service: two instances (one
 * worker each) on one private redis-server.
 * - logout-all racing logins: logins of one user loop on instance A while logout-all runs on instance B.
 *   Afterwards every token that still answers 200 is listed by GET /api/auth/sessions (as `current`),
 *   and one more logout-all ends every one of them. Before the fix, logout-all deleted the whole index
 *   and orphaned the sessions whose index write landed in between: live, unlisted, unrevocable.
 * - BANGUI_MAX_SESSIONS_PER_USER under concurrent logins: K logins at once with a limit of N leave
 *   exactly N valid tokens (every login agrees on the same "newest N"), not fewer.
 */
import { join } from "node:path";
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

jest.setTimeout(90_000);

/** Logins on A during the race (bounded; a few per-IP limits must not be reached). */
const RACE_LOGINS = 60;
/** Four services start at once on a loaded 2-core machine: a generous bound, not a speed claim. */
const START_MS = 60_000;
let redis: RedisServerHandle;
let dir: string;
let A: ServiceHandle;
let B: ServiceHandle;
let L1: ServiceHandle; // BANGUI_MAX_SESSIONS_PER_USER=2
let L2: ServiceHandle;

const status = async (s: ServiceHandle, token: string) => (await http(s.url, "GET", "/api/auth/session", { token })).status;

beforeAll(async () => {
  redis = await startRedisServer();
  dir = tempDir("index-race");
  const usersFile = join(dir, "users.json");
  await writeUsersFile(usersFile, { racer: "racer-password-1", limited: "limited-password-1" });
  // A long command timeout: this file is about races, not outages; a loaded CI machine must not 503.
  // Many logins from one address on purpose: the per-IP login limit (when present) must not answer 429.
  const base = {
    BANGUI_REDIS_URL: redis.url,
    BANGUI_USERS_FILE: usersFile,
    BANGUI_WORKERS: "1",
    BANGUI_REDIS_COMMAND_TIMEOUT_MS: "10000",
    BANGUI_LOGIN_MAX_PER_IP: "100000",
  };
  const limited = { ...base, BANGUI_KEY_PREFIX: "e2e-limit:", BANGUI_MAX_SESSIONS_PER_USER: "2" };
  [A, B, L1, L2] = await startServices([
    { env: { ...base, BANGUI_KEY_PREFIX: "e2e-index:" }, startTimeoutMs: START_MS },
    { env: { ...base, BANGUI_KEY_PREFIX: "e2e-index:" }, startTimeoutMs: START_MS },
    { env: limited, startTimeoutMs: START_MS },
    { env: limited, startTimeoutMs: START_MS },
  ]);
});

afterAll(async () => {
  await stopAll([A, B, L1, L2]);
  await redis?.stop();
  if (dir) removeTempDir(dir);
});

test(`logout-all on one instance racing ${RACE_LOGINS} logins on another: every live token is listed, the next logout-all ends it`, async () => {
  let loggingIn = true;
  let rounds = 0;
  const logins = mapLimit(Array.from({ length: RACE_LOGINS }), 6, () => login(A.url, "racer", "racer-password-1")).finally(
    () => (loggingIn = false),
  );
  // Logout-all needs a session of its own, which it ends too: log in on B, log out everywhere, again.
  const wipers = Array.from({ length: 2 }, async () => {
    while (loggingIn) {
      const own = await login(B.url, "racer", "racer-password-1");
      // 401 when the other wiper's logout-all ended this session first.
      const answer = (await http(B.url, "POST", "/api/auth/logout-all", { token: own })).status;
      expect([204, 401]).toContain(answer);
      if (answer === 204) rounds++;
    }
  });
  const tokens = await logins;
  await Promise.all(wipers);
  expect(rounds).toBeGreaterThan(0);

  const live = (await mapLimit(tokens, 8, async (t) => ((await status(A, t)) === 200 ? t : undefined))).filter(
    (t): t is string => t !== undefined,
  );
  // Each live token sees itself in the list ("current"), on both instances.
  const unlisted = await mapLimit(live, 8, async (token) => {
    const seen = await Promise.all(
      [A, B].map(async (s) => {
        const res = await http(s.url, "GET", "/api/auth/sessions", { token });
        return res.status === 200 && (res.json.sessions as Array<{ current: boolean }>).some((x) => x.current);
      }),
    );
    return seen.every(Boolean) ? 0 : 1;
  });
  expect({ live: live.length, unlisted: unlisted.reduce<number>((a, b) => a + b, 0) }).toEqual({ live: live.length, unlisted: 0 });

  const own = await login(B.url, "racer", "racer-password-1");
  expect((await http(B.url, "POST", "/api/auth/logout-all", { token: own })).status).toBe(204);
  const after = await mapLimit(tokens, 8, async (t) => [await status(A, t), await status(B, t)]);
  expect(after.flat().filter((s) => s !== 401)).toEqual([]);
});

test("8 concurrent logins with BANGUI_MAX_SESSIONS_PER_USER=2 on two instances leave exactly 2 valid tokens", async () => {
  for (let round = 0; round < 3; round++) {
    const tokens = await Promise.all(
      Array.from({ length: 8 }, (_x, i) => login(i % 2 === 0 ? L1.url : L2.url, "limited", "limited-password-1")),
    );
    const valid = (await mapLimit(tokens, 8, (t) => status(L1, t))).filter((s) => s === 200);
    expect({ round, valid: valid.length }).toEqual({ round, valid: 2 });
  }
});
