/**
 * BANGUI_MAX_SESSIONS_PER_USER under concurrent logins: every login computes the same "keep the newest
 * N" (createdAt, then id), so K logins at once leave exactly N valid tokens. Before the fix each login
 * kept itself and evicted the others' sessions, so concurrent logins ended each other (fewer than N).
 */
import request from "supertest";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { makeHarness, PASSWORDS, tokenFrom, type BackendKind, type Harness } from "./harness";

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

describe.each<BackendKind>(["memory", "redis"])("max sessions per user on the %s backend", (kind) => {
  test.each([
    [8, 1],
    [8, 3],
  ])("%i concurrent logins with a limit of %i leave exactly that many valid tokens", async (k, n) => {
    const h = await makeHarness(kind, server.url, { config: { maxSessionsPerUser: n } });
    open.push(h);
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(
        Array.from({ length: k }, () => request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice })),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(k).fill(200));
      const statuses = await Promise.all(
        answers.map(async (a) => (await request(h.app).get("/api/auth/session").set("Authorization", `Bearer ${tokenFrom(a)}`)).status),
      );
      expect({ round, valid: statuses.filter((s) => s === 200).length }).toEqual({ round, valid: n });
      expect(await h.cache.listUserSessions("alice")).toHaveLength(n);
    }
  });
});
