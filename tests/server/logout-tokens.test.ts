/**
 * POST /api/auth/logout ends every session the request presents: a bearer token and a cookie sent
 * together are both ended (before the fix only the bearer's was, yet the answer was 204 and the cookie
 * was cleared, leaving the cookie's session alive).
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

describe.each<BackendKind>(["memory", "redis"])("logout on the %s backend", (kind) => {
  async function loginToken(h: Harness): Promise<string> {
    const res = await request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice });
    expect(res.status).toBe(200);
    return tokenFrom(res);
  }
  const status = async (h: Harness, token: string) =>
    (await request(h.app).get("/api/auth/session").set("Authorization", `Bearer ${token}`)).status;

  test("a bearer token and a cookie of two sessions: both sessions end", async () => {
    const h = await makeHarness(kind, server.url);
    open.push(h);
    const [bearer, cookie, bystander] = [await loginToken(h), await loginToken(h), await loginToken(h)];
    const res = await request(h.app)
      .post("/api/auth/logout")
      .set("Authorization", `Bearer ${bearer}`)
      .set("Cookie", `bangui_session=${cookie}`);
    expect(res.status).toBe(204);
    expect({ bearer: await status(h, bearer), cookie: await status(h, cookie), bystander: await status(h, bystander) }).toEqual({
      bearer: 401,
      cookie: 401,
      bystander: 200,
    });
  });

  test("the same token as bearer and cookie: 204, ended once", async () => {
    const h = await makeHarness(kind, server.url);
    open.push(h);
    const token = await loginToken(h);
    const res = await request(h.app)
      .post("/api/auth/logout")
      .set("Authorization", `Bearer ${token}`)
      .set("Cookie", `bangui_session=${token}`);
    expect(res.status).toBe(204);
    expect(await status(h, token)).toBe(401);
  });
});
