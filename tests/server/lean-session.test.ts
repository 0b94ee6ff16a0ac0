import request from "supertest";
import type { Express } from "express";
import { silentLogger } from "../../src/logger";
import { createApp } from "../../src/server/app";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { makeHarness, PASSWORDS, tokenFrom, type Harness } from "./harness";

/**
 * GET /api/auth/session answered on the lean path sends what the Express route sends: same status, same
 * body, same headers (helmet's included), for a valid session, none, garbage, HEAD, and an outage.
 */
function expressOnly(h: Harness): Express {
  return createApp({ sessions: h.service, config: h.config, logger: silentLogger(), ready: async () => true, leanPath: false });
}

type Answer = { status: number; headers: Record<string, unknown>; text: string };

function comparable(res: Answer): { status: number; headers: Record<string, unknown>; text: string } {
  const headers = { ...res.headers };
  delete headers.date;
  return { status: res.status, headers, text: res.text };
}

async function both(lean: Express, full: Express, method: "get" | "head", set: Record<string, string>): Promise<[Answer, Answer]> {
  const a = await request(lean)[method]("/api/auth/session").set(set);
  const b = await request(full)[method]("/api/auth/session").set(set);
  return [a, b];
}

describe("GET /api/auth/session: lean path and Express answer alike", () => {
  let h: Harness;
  let token: string;
  beforeAll(async () => {
    h = await makeHarness("memory", undefined);
    token = tokenFrom(await request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice }));
  });
  afterAll(async () => {
    await h?.close();
  });

  test.each<[string, "get" | "head", () => Record<string, string>]>([
    ["valid cookie", "get", () => ({ Cookie: `bangui_session=${token}` })],
    ["valid bearer", "get", () => ({ Authorization: `Bearer ${token}` })],
    ["HEAD with a valid cookie", "head", () => ({ Cookie: `bangui_session=${token}` })],
    ["no session", "get", () => ({})],
    ["garbage token", "get", () => ({ Authorization: "Bearer x" })],
  ])("%s", async (_label, method, headers) => {
    const [lean, full] = await both(h.app, expressOnly(h), method, headers());
    expect(comparable(lean)).toEqual(comparable(full));
    expect(lean.headers["content-security-policy"]).toContain("script-src 'self'");
  });

  test("other methods still get Express's 405 with Allow", async () => {
    const res = await request(h.app).post("/api/auth/session");
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET, HEAD");
  });
});

describe("with the Redis backend down", () => {
  let server: RedisServerHandle;
  let h: Harness;
  let token: string;
  beforeAll(async () => {
    server = await startRedisServer();
    h = await makeHarness("redis", server.url, { config: { redisCommandTimeoutMs: 300 } });
    token = tokenFrom(await request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice }));
    await server.kill("SIGKILL");
  });
  afterAll(async () => {
    await h?.close();
    await server?.stop();
  });

  test("both answer the same 503", async () => {
    const [lean, full] = await both(h.app, expressOnly(h), "get", { Authorization: `Bearer ${token}` });
    expect(lean.status).toBe(503);
    expect(comparable(lean)).toEqual(comparable(full));
  });
});
