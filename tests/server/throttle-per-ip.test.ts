/**
 * BANGUI_LOGIN_MAX_PER_IP: login attempts with random usernames from one address, each of which would
 * cost a full scrypt check, stop at the per-IP limit with 429, before the password check. Memory and
 * Redis (two instances sharing the count) here; the ipc backend's shared count is in
 * tests/e2e/ipc-sessions.test.ts.
 */
import { randomBytes } from "node:crypto";
import request from "supertest";
import { verifyPassword } from "../../src/auth/passwords";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { makeHarness, PASSWORDS, type BackendKind, type Harness } from "./harness";

let server: RedisServerHandle;
const open: Harness[] = [];
beforeAll(async () => {
  server = await startRedisServer();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.close()));
});
afterAll(async () => {
  await server?.stop();
});

const LIMIT = 5;

async function harness(kind: BackendKind, counter: { calls: number }, share?: Harness): Promise<Harness> {
  const h = await makeHarness(kind, server.url, {
    config: { loginMaxPerIp: LIMIT, loginMaxFailures: 100, loginWindowSeconds: 60 },
    verifyPassword: (pw, hash) => {
      counter.calls++;
      return verifyPassword(pw, hash);
    },
    ...(share ? { usersFile: share.config.usersFile, keyPrefix: share.keyPrefix } : {}),
  });
  open.push(h);
  return h;
}

const randomLogin = (h: Harness) =>
  request(h.app).post("/api/auth/login").send({ username: `u-${randomBytes(6).toString("hex")}`, password: "some-guess-123" });

test.each<BackendKind>(["memory", "redis"])(
  "%s: random usernames from one IP get 429 after BANGUI_LOGIN_MAX_PER_IP attempts, with no password check beyond it",
  async (kind) => {
    const counter = { calls: 0 };
    const h = await harness(kind, counter);
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 4; i++) statuses.push((await randomLogin(h)).status);
    expect(statuses).toEqual([...Array(LIMIT).fill(401), 429, 429, 429, 429]);
    expect(counter.calls).toBe(LIMIT);
    const last = await request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice });
    expect(last.status).toBe(429); // the right password too: the address has used its window
    expect(Number(last.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(counter.calls).toBe(LIMIT);
  },
);

test("redis: two instances share the per-IP count", async () => {
  const counter = { calls: 0 };
  const a = await harness("redis", counter);
  const b = await harness("redis", counter, a);
  const statuses: number[] = [];
  for (let i = 0; i < LIMIT + 2; i++) statuses.push((await randomLogin(i % 2 === 0 ? a : b)).status);
  expect(statuses).toEqual([...Array(LIMIT).fill(401), 429, 429]);
  expect(counter.calls).toBe(LIMIT);
});

test("successful logins count against the address too, but do not reset it", async () => {
  const counter = { calls: 0 };
  const h = await harness("memory", counter);
  for (let i = 0; i < LIMIT; i++) {
    expect((await request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice })).status).toBe(200);
  }
  expect((await randomLogin(h)).status).toBe(429);
});
