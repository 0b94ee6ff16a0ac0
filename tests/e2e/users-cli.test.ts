/**
 * The users CLI (built: dist/src/auth/users-cli.js) against RUNNING services: one on Redis, one on the
 * in-memory backend. Removing a user or changing its password ends that user's sessions in both modes.
 */
import { join } from "node:path";
import Redis from "ioredis";
import { createKeySpace } from "../../src/cache/keys";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import {
  eventually,
  http,
  login,
  removeTempDir,
  runUsersCli,
  startServices,
  stopAll,
  tempDir,
  writeUsersFile,
  type ServiceHandle,
} from "../helpers/service";

jest.setTimeout(300_000);

const PREFIX = "e2e-cli:";
let redis: RedisServerHandle;
let client: Redis;
let dir: string;
let onRedis: ServiceHandle;
let inMemory: ServiceHandle;
let redisEnv: Record<string, string>;
let memoryEnv: Record<string, string>;

const sessionStatus = async (s: ServiceHandle, token: string) =>
  (await http(s.url, "GET", "/api/auth/session", { token })).status;

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  dir = tempDir("cli");
  redisEnv = { BANGUI_REDIS_URL: redis.url, BANGUI_USERS_FILE: join(dir, "redis-users.json"), BANGUI_KEY_PREFIX: PREFIX };
  memoryEnv = { BANGUI_USERS_FILE: join(dir, "memory-users.json") };
  await writeUsersFile(redisEnv.BANGUI_USERS_FILE!, { keep: "keep-password-1" });
  await writeUsersFile(memoryEnv.BANGUI_USERS_FILE!, { keep: "keep-password-1" });
  [onRedis, inMemory] = await startServices([{ env: redisEnv }, { env: memoryEnv }]);
});

afterAll(async () => {
  await stopAll([onRedis, inMemory]);
  client?.disconnect();
  await redis?.stop();
  if (dir) removeTempDir(dir);
});

test.each([
  ["Redis", () => ({ service: onRedis, env: redisEnv })],
  ["in-memory", () => ({ service: inMemory, env: memoryEnv })],
])("add, list and remove manage the users of a running service (%s)", async (_mode, pick) => {
  const { service, env } = pick();
  const added = await runUsersCli(["add", "carol"], env, "carol-password-1\nignored second line\n");
  expect(added.code).toBe(0);
  expect(added.stdout + added.stderr).not.toContain("carol-password-1");
  const listed = await runUsersCli(["list"], env);
  expect(listed.code).toBe(0);
  expect(listed.stdout.split("\n").filter(Boolean)).toEqual(["carol", "keep"]);
  // The running service reloads the file: the new user can log in (only the first stdin line counts).
  const canLogin = await eventually(async () => {
    const r = await http(service.url, "POST", "/api/auth/login", { body: { username: "carol", password: "carol-password-1" } });
    return r.status === 200;
  });
  expect(canLogin).toBe(true);

  const removed = await runUsersCli(["remove", "carol"], env);
  expect(removed.code).toBe(0);
  expect((await runUsersCli(["list"], env)).stdout.split("\n").filter(Boolean)).toEqual(["keep"]);
  expect((await runUsersCli(["remove", "carol"], env)).code).toBe(1);
});

test("removing a user ends that user's sessions on a running Redis-backed service at once", async () => {
  await runUsersCli(["add", "dave"], redisEnv, "dave-password-1\n");
  await eventually(async () => (await http(onRedis.url, "POST", "/api/auth/login", { body: { username: "dave", password: "dave-password-1" } })).status === 200);
  const [t1, t2, keep] = await Promise.all([
    login(onRedis.url, "dave", "dave-password-1"),
    login(onRedis.url, "dave", "dave-password-1"),
    login(onRedis.url, "keep", "keep-password-1"),
  ]);
  expect(await sessionStatus(onRedis, t1)).toBe(200);

  const removed = await runUsersCli(["remove", "dave"], redisEnv);
  expect(removed.code).toBe(0);
  // Right after the CLI returns: the sessions are gone from Redis, not merely rejected later.
  expect(await sessionStatus(onRedis, t1)).toBe(401);
  expect(await sessionStatus(onRedis, t2)).toBe(401);
  expect(await client.exists(createKeySpace(PREFIX).userIndex("dave"))).toBe(0);
  expect(await sessionStatus(onRedis, keep)).toBe(200);
});

test("removing a user ends that user's sessions on a running in-memory service", async () => {
  await runUsersCli(["add", "erin"], memoryEnv, "erin-password-1\n");
  await eventually(async () => (await http(inMemory.url, "POST", "/api/auth/login", { body: { username: "erin", password: "erin-password-1" } })).status === 200);
  const token = await login(inMemory.url, "erin", "erin-password-1");
  const keep = await login(inMemory.url, "keep", "keep-password-1");
  expect(await sessionStatus(inMemory, token)).toBe(200);

  expect((await runUsersCli(["remove", "erin"], memoryEnv)).code).toBe(0);
  // The CLI cannot reach the service's memory: the service sees the file change and rejects the session.
  expect(await eventually(async () => (await sessionStatus(inMemory, token)) === 401)).toBe(true);
  expect(await sessionStatus(inMemory, keep)).toBe(200);
});

test.each([
  ["Redis", () => ({ service: onRedis, env: redisEnv })],
  ["in-memory", () => ({ service: inMemory, env: memoryEnv })],
])("changing a password ends the user's sessions and the new password logs in (%s)", async (_mode, pick) => {
  const { service, env } = pick();
  const user = `frank${_mode === "Redis" ? "r" : "m"}`;
  await runUsersCli(["add", user], env, "old-password-1\n");
  await eventually(async () => (await http(service.url, "POST", "/api/auth/login", { body: { username: user, password: "old-password-1" } })).status === 200);
  const token = await login(service.url, user, "old-password-1");

  expect((await runUsersCli(["add", user], env, "new-password-1\n")).code).toBe(0);
  expect(await eventually(async () => (await sessionStatus(service, token)) === 401)).toBe(true);
  expect(await eventually(async () => (await http(service.url, "POST", "/api/auth/login", { body: { username: user, password: "new-password-1" } })).status === 200)).toBe(true);
  expect((await http(service.url, "POST", "/api/auth/login", { body: { username: user, password: "old-password-1" } })).status).toBe(401);
});
