import { setTimeout as sleep } from "node:timers/promises";
import request from "supertest";
import { SessionBackendUnavailableError } from "../../src/errors";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { makeHarness, PASSWORDS, tokenFrom, waitReady, type Harness } from "./harness";

/**
 * A Redis that cannot answer is an outage (503, fail closed); a command Redis refuses as wrong, or a bug in
 * our own code around a Redis call, is not: 500, logged at error level, and never a stack in the body.
 */
interface LogLine {
  level: number;
  msg?: string;
  err?: { type?: string; message?: string; stack?: string };
}
const ERROR_LEVEL = 50;
const parsedLogs = (h: Harness): LogLine[] => h.logs.map((l) => JSON.parse(l) as LogLine);
const login = (h: Harness) => request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice });
const unavailable = { error: "session_backend_unavailable", message: expect.any(String) };

describe("a command the Redis server refuses as unknown (SMEMBERS renamed away)", () => {
  let server: RedisServerHandle;
  let h: Harness;
  beforeAll(async () => {
    server = await startRedisServer({ args: ["--rename-command", "SMEMBERS", ""] });
    h = await makeHarness("redis", server.url, { config: { redisCommandTimeoutMs: 2000 } });
  });
  afterAll(async () => {
    await h?.close();
    await server?.stop();
  });

  test("the route that needs it answers 500 JSON without a stack, and the error is logged", async () => {
    const token = tokenFrom(await login(h));
    const res = await request(h.app).get("/api/auth/sessions").set("Authorization", `Bearer ${token}`);
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: "internal_error", message: "an unexpected error occurred" });
    expect(res.text).not.toMatch(/\bat |ReplyError|SMEMBERS|unknown command/);
    const errors = parsedLogs(h).filter((l) => l.level === ERROR_LEVEL && l.msg === "unexpected error");
    expect(errors).toHaveLength(1);
    // ioredis 6's RESP decoder: class SimpleError, `name` "ReplyError".
    expect(errors[0]?.err?.message).toMatch(/^ERR unknown command/);
  });

  test("the rest of the service is not reported down: session checks answer 200, /readyz 200", async () => {
    const token = tokenFrom(await login(h));
    expect((await request(h.app).get("/api/auth/session").set("Authorization", `Bearer ${token}`)).status).toBe(200);
    expect((await request(h.app).get("/readyz")).status).toBe(200);
  });
});

describe("Redis failures stay 503", () => {
  let master: RedisServerHandle;
  let replica: RedisServerHandle;
  let onMaster: Harness;
  let onReplica: Harness;
  beforeAll(async () => {
    master = await startRedisServer();
    replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(master.port)] });
    onMaster = await makeHarness("redis", master.url, { config: { redisCommandTimeoutMs: 300 } });
    onReplica = await makeHarness("redis", replica.url, { config: { redisCommandTimeoutMs: 2000 } });
    // Until its first sync is done a replica may answer LOADING: wait for the link, however long it takes.
    while (!(await onReplica.redis!.info("replication")).includes("master_link_status:up")) await sleep(50);
  });
  afterAll(async () => {
    await onReplica?.close();
    await onMaster?.close();
    await replica?.stop();
    await master?.stop();
  });

  test("a logout on a read-only replica (READONLY reply to UNLINK) answers 503, logged as unavailable, not as an error", async () => {
    const auth = { Authorization: `Bearer ${"x".repeat(43)}` };
    // Reads work on the replica: the cache answers, the token is unknown.
    expect((await request(onReplica.app).get("/api/auth/session").set(auth)).status).toBe(401);
    const res = await request(onReplica.app).post("/api/auth/logout").set(auth);
    expect(res.status).toBe(503);
    expect(res.body).toEqual(unavailable);
    expect(parsedLogs(onReplica).some((l) => l.level === ERROR_LEVEL)).toBe(false);
  });

  test("a Redis frozen past the command timeout (SIGSTOP): 503, then 200 when it answers again", async () => {
    const token = tokenFrom(await login(onMaster));
    const auth = { Authorization: `Bearer ${token}` };
    master.pause();
    try {
      const res = await request(onMaster.app).get("/api/auth/session").set(auth);
      expect(res.status).toBe(503);
      expect(res.body).toEqual(unavailable);
    } finally {
      master.resume();
    }
    await waitReady(onMaster.redis!);
    expect((await request(onMaster.app).get("/api/auth/session").set(auth)).status).toBe(200);
  });

  test("a Redis killed: 503 on every route that needs it, none logged as an unexpected error", async () => {
    const token = tokenFrom(await login(onMaster));
    const auth = { Authorization: `Bearer ${token}` };
    await master.kill("SIGKILL");
    expect((await request(onMaster.app).get("/api/auth/session").set(auth)).status).toBe(503);
    expect((await request(onMaster.app).get("/api/auth/sessions").set(auth)).status).toBe(503);
    expect((await request(onMaster.app).post("/api/auth/logout").set(auth)).status).toBe(503);
    expect((await login(onMaster)).status).toBe(503);
    expect(parsedLogs(onMaster).filter((l) => l.level === ERROR_LEVEL)).toEqual([]);
  });

  test("a bug in a cache operation (a TypeError inside it) is rethrown as itself, not as an outage", async () => {
    // The replica answers reads, so only the bug can fail this call: hashing an undefined user name.
    const err = await onReplica.cache.listUserSessions(undefined as unknown as string).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).name).toBe("TypeError");
    expect(err).not.toBeInstanceOf(SessionBackendUnavailableError);
  });
});
