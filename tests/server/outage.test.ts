import request from "supertest";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { makeHarness, PASSWORDS, tokenFrom, waitReady, type Harness } from "./harness";

/** With Redis down every route that needs a session answers 503 (fail closed), and service resumes after. */
let server: RedisServerHandle;
let h: Harness;
let token: string;

beforeAll(async () => {
  server = await startRedisServer({ appendonly: true });
  h = await makeHarness("redis", server.url, { config: { redisCommandTimeoutMs: 300 } });
  const res = await request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice });
  expect(res.status).toBe(200);
  token = tokenFrom(res);
  await server.kill("SIGKILL");
});
afterAll(async () => {
  await h?.close();
  await server?.stop();
});

const unavailable = { error: "session_backend_unavailable", message: expect.any(String) };
const auth = () => ({ Authorization: `Bearer ${token}` });

describe("with the Redis backend stopped", () => {
  test("login answers 503, not 401", async () => {
    const res = await request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice });
    expect(res.status).toBe(503);
    expect(res.body).toEqual(unavailable);
    expect(res.headers["set-cookie"]).toBeUndefined();
  });

  test("a login with a wrong password answers 503 too (the throttle store fails closed)", async () => {
    const res = await request(h.app).post("/api/auth/login").send({ username: "alice", password: "wrong-password" });
    expect(res.status).toBe(503);
  });

  test("GET /api/auth/session answers 503, never 200 or 401", async () => {
    const res = await request(h.app).get("/api/auth/session").set(auth());
    expect(res.status).toBe(503);
    expect(res.body).toEqual(unavailable);
  });

  test("logout answers 503 and does not clear the cookie", async () => {
    const res = await request(h.app).post("/api/auth/logout").set(auth());
    expect(res.status).toBe(503);
    expect(res.body).toEqual(unavailable);
    expect(res.headers["set-cookie"]).toBeUndefined();
  });

  test("logout-all, the sessions list and revoke answer 503", async () => {
    expect((await request(h.app).post("/api/auth/logout-all").set(auth())).status).toBe(503);
    expect((await request(h.app).get("/api/auth/sessions").set(auth())).status).toBe(503);
    expect((await request(h.app).delete(`/api/auth/sessions/${"a".repeat(32)}`).set(auth())).status).toBe(503);
  });

  test("GET /readyz answers 503 and /healthz 200", async () => {
    expect((await request(h.app).get("/readyz")).status).toBe(503);
    expect((await request(h.app).get("/healthz")).status).toBe(200);
  });

  test("after Redis comes back, the session (persisted with AOF) is valid again without a restart of the app", async () => {
    await server.restart();
    await waitReady(h.redis!);
    const res = await request(h.app).get("/api/auth/session").set(auth());
    expect(res.status).toBe(200);
    expect(res.body.username).toBe("alice");
    expect((await request(h.app).post("/api/auth/logout").set(auth())).status).toBe(204);
    expect((await request(h.app).get("/api/auth/session").set(auth())).status).toBe(401);
  });
});
