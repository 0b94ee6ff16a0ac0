import { randomBytes } from "node:crypto";
import request from "supertest";
import { createRedisClient, SessionBackendUnavailableError } from "../../src/cache";
import { loadConfig } from "../../src/config";
import { parseRedisUrl } from "../../src/redis-url";
import { LoginThrottledError } from "../../src/auth/errors";
import { LoginThrottle } from "../../src/auth/throttle";
import { startClusterTopology, type ClusterTopology } from "../helpers/redis-cluster";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { makeHarness, PASSWORDS, waitReady, type Harness } from "./harness";

let server: RedisServerHandle;
let cluster: ClusterTopology | undefined;
const open: Harness[] = [];

beforeAll(async () => {
  server = await startRedisServer();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.close()));
});
afterAll(async () => {
  await server?.stop();
  await cluster?.stop();
});

/** Two app instances (two "services") on one Redis, one users file, one key prefix. */
async function twoInstances(maxFailures: number): Promise<[Harness, Harness]> {
  const config = { loginMaxFailures: maxFailures, loginWindowSeconds: 60 };
  const a = await makeHarness("redis", server.url, { config });
  open.push(a);
  const b = await makeHarness("redis", server.url, { config, usersFile: a.config.usersFile, keyPrefix: a.keyPrefix });
  open.push(b);
  return [a, b];
}

const attempt = (h: Harness, password: string) =>
  request(h.app).post("/api/auth/login").send({ username: "alice", password });

test("failed logins on two instances sharing Redis add up to one limit, and both answer 429 with Retry-After", async () => {
  const [a, b] = await twoInstances(4);
  expect((await attempt(a, "wrong-1")).status).toBe(401);
  expect((await attempt(b, "wrong-2")).status).toBe(401);
  expect((await attempt(a, "wrong-3")).status).toBe(401);
  expect((await attempt(b, "wrong-4")).status).toBe(401);
  for (const h of [a, b]) {
    const res = await attempt(h, PASSWORDS.alice!);
    expect(res.status).toBe(429);
    expect(Number(res.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers["retry-after"])).toBeLessThanOrEqual(60);
  }
});

test("a successful login on one instance resets the count seen by the other", async () => {
  const [a, b] = await twoInstances(3);
  expect((await attempt(a, "wrong-1")).status).toBe(401);
  expect((await attempt(a, "wrong-2")).status).toBe(401);
  expect((await attempt(b, PASSWORDS.alice!)).status).toBe(200);
  for (let i = 0; i < 3; i++) expect((await attempt(a, `wrong-again-${i}`)).status).toBe(401);
  expect((await attempt(b, "wrong-last")).status).toBe(429);
});

test("the throttle counters in Redis hold neither the username nor the password", async () => {
  const [a] = await twoInstances(5);
  await attempt(a, "hunter2-secret");
  const keys = await a.redis!.keys(`${a.keyPrefix}login-fail*`);
  expect(keys).toHaveLength(1);
  expect(keys[0]).not.toContain("alice");
  expect(keys[0]).not.toContain("hunter2");
});

test("LoginThrottle works against a Redis Cluster client (single-key script, any slot)", async () => {
  cluster = await startClusterTopology({ masters: 3, replicasPerMaster: 0 });
  const config = loadConfig({ BANGUI_REDIS_URL: cluster.url });
  const client = createRedisClient(parseRedisUrl(cluster.url), config);
  try {
    await waitReady(client);
    const throttle = new LoginThrottle({ maxFailures: 2, windowSeconds: 30, redis: client, keyPrefix: `c${randomBytes(4).toString("hex")}:login-fail` });
    // Many users: their keys land on every master.
    for (let u = 0; u < 12; u++) {
      await throttle.attempt(`user${u}`, "127.0.0.1");
      await throttle.attempt(`user${u}`, "127.0.0.1");
      await expect(throttle.attempt(`user${u}`, "127.0.0.1")).rejects.toBeInstanceOf(LoginThrottledError);
      await throttle.reset(`user${u}`, "127.0.0.1");
      await expect(throttle.attempt(`user${u}`, "127.0.0.1")).resolves.toBeUndefined();
    }
  } finally {
    client.disconnect();
  }
}, 60_000);

test("LoginThrottle fails closed with SessionBackendUnavailableError when Redis does not answer", async () => {
  const dead = await startRedisServer();
  const config = loadConfig({ BANGUI_REDIS_URL: dead.url, BANGUI_REDIS_COMMAND_TIMEOUT_MS: "200" });
  const client = createRedisClient(parseRedisUrl(dead.url), config);
  try {
    await waitReady(client);
    const throttle = new LoginThrottle({ maxFailures: 2, redis: client });
    await dead.stop();
    await expect(throttle.attempt("alice", "::1")).rejects.toBeInstanceOf(SessionBackendUnavailableError);
    await expect(throttle.reset("alice", "::1")).rejects.toBeInstanceOf(SessionBackendUnavailableError);
  } finally {
    client.disconnect();
    await dead.stop();
  }
});
