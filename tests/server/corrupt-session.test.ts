/**
 * A Redis value behind a real token that is not a session (issue 4, item 3), seen over HTTP: 401 with the
 * JSON error body, never a 5xx; the key is removed; the log line does not hold the value.
 */
import type Redis from "ioredis";
import request from "supertest";
import { createKeySpace } from "../../src/cache";
import { sessionIdFromToken } from "../../src/auth/tokens";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { makeHarness, PASSWORDS, tokenFrom, type Harness } from "./harness";

let server: RedisServerHandle;
let h: Harness;
beforeAll(async () => {
  server = await startRedisServer();
  h = await makeHarness("redis", server.url);
});
afterAll(async () => {
  await h?.close();
  await server?.stop();
});

const MARK = "FOREIGN-VALUE-7731";
const cases: Array<[string, (r: Redis, key: string) => Promise<unknown>]> = [
  ["garbage", (r, k) => r.set(k, `\u0000\u00ff${MARK}`)],
  ["JSON of the wrong shape", (r, k) => r.set(k, JSON.stringify({ user: MARK, admin: true }))],
  ["a key of the wrong type (a set)", (r, k) => r.sadd(k, MARK)],
  ["a session whose expiresAt is past", (r, k) => r.set(k, JSON.stringify({ username: "alice", createdAt: 1, lastSeenAt: 1, expiresAt: Date.now() - 1, ip: MARK }))],
];

test.each(cases)("%s under a valid token: GET /api/auth/session answers 401 JSON and the key is gone", async (_what, write) => {
  const login = await request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice });
  expect(login.status).toBe(200);
  const token = tokenFrom(login);
  const key = createKeySpace(h.keyPrefix).session(sessionIdFromToken(token));
  const redis = h.redis as Redis;
  expect(await redis.exists(key)).toBe(1);
  await redis.del(key);
  await write(redis, key);
  h.logs.length = 0;

  const res = await request(h.app).get("/api/auth/session").set("Authorization", `Bearer ${token}`);

  expect(res.status).toBe(401);
  expect(res.body).toEqual({ error: "unauthenticated", message: "no valid session" });
  expect(await redis.exists(key)).toBe(0);
  expect(h.logs.join("")).not.toContain(MARK);
  expect(h.logs.join("")).not.toContain(token);
});
