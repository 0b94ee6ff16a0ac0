/**
 * A logout that waits for replicas does not block its worker. WAIT runs on a connection of its own:
 * Redis runs nothing else from a connection while its WAIT blocks, so on the data connection every
 * session check, login and readiness probe of the worker would queue behind it (and fail with it).
 *
 * Setup: the built service (one worker, near-cache off so every session check reads Redis) on a master
 * with one replica, BANGUI_REDIS_WAIT_REPLICAS=1 and a WAIT timeout ABOVE the command timeout. The
 * replica is frozen with SIGSTOP (its link stays open, it acknowledges nothing). A logout then waits
 * until the WAIT timeout and answers 503; while it is still pending, a session check, a login and
 * /readyz of the same worker each answer 200. Asserted by order of completion, not by durations.
 */
import { join } from "node:path";
import Redis from "ioredis";
import { waitFor } from "../helpers/redis-process";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { http, login, removeTempDir, startService, tempDir, writeUsersFile, type ServiceHandle } from "../helpers/service";

jest.setTimeout(120_000);

/** Long enough that the other requests finish first on a loaded machine; the logout then answers 503. */
const WAIT_TIMEOUT_MS = 15_000;
let master: RedisServerHandle;
let replica: RedisServerHandle;
let admin: Redis;
let dir: string;
let svc: ServiceHandle;

beforeAll(async () => {
  master = await startRedisServer();
  replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(master.port)] });
  admin = new Redis(master.url);
  await waitFor("the replica is in sync", 20_000, async () => {
    const info = await admin.info("replication");
    return /connected_slaves:1/.test(info) && /state=online/.test(info);
  });
  dir = tempDir("wait-iso");
  const usersFile = join(dir, "users.json");
  await writeUsersFile(usersFile, { waiter: "waiter-password-1" });
  svc = await startService({
    env: {
      BANGUI_REDIS_URL: master.url,
      BANGUI_USERS_FILE: usersFile,
      BANGUI_WORKERS: "1",
      BANGUI_NEAR_CACHE: "false",
      BANGUI_REDIS_WAIT_REPLICAS: "1",
      BANGUI_REDIS_COMMAND_TIMEOUT_MS: "3000",
      BANGUI_REDIS_WAIT_TIMEOUT_MS: String(WAIT_TIMEOUT_MS),
    },
    startTimeoutMs: 60_000,
  });
});

afterAll(async () => {
  try {
    replica?.resume();
  } catch {
    // already running
  }
  await svc?.stop().catch(() => svc?.kill());
  admin?.disconnect();
  await replica?.stop();
  await master?.stop();
  if (dir) removeTempDir(dir);
});

test("while a logout waits for a frozen replica (then 503), the same worker's session checks, logins and /readyz answer", async () => {
  const loggingOut = await login(svc.url, "waiter", "waiter-password-1");
  const checked = await login(svc.url, "waiter", "waiter-password-1");
  // A logout with the replica alive is acknowledged: 204.
  expect((await http(svc.url, "POST", "/api/auth/logout", { token: await login(svc.url, "waiter", "waiter-password-1") })).status).toBe(204);

  replica.pause();
  let logoutDone = false;
  const logout = http(svc.url, "POST", "/api/auth/logout", { token: loggingOut, timeoutMs: WAIT_TIMEOUT_MS + 30_000 }).finally(
    () => (logoutDone = true),
  );
  // The logout's WAIT is blocked on the master before the other requests are sent.
  await waitFor("the logout to block in WAIT", 20_000, async () => /blocked_clients:1/.test(await admin.info("clients")));

  const during = async (what: string, run: () => Promise<number>) => ({ what, status: await run(), logoutPending: !logoutDone });
  const results = [
    await during("session check", async () => (await http(svc.url, "GET", "/api/auth/session", { token: checked })).status),
    await during("login", async () => (await http(svc.url, "POST", "/api/auth/login", { body: { username: "waiter", password: "waiter-password-1" } })).status),
    await during("readyz", async () => (await http(svc.url, "GET", "/readyz")).status),
  ];
  expect(results).toEqual([
    { what: "session check", status: 200, logoutPending: true },
    { what: "login", status: 200, logoutPending: true },
    { what: "readyz", status: 200, logoutPending: true },
  ]);

  expect((await logout).status).toBe(503);
  replica.resume();
});
