import request from "supertest";
import { createKeySpace, type RedisSessionCache } from "../../src/cache";
import { passwordVerificationCount, verifyPassword } from "../../src/auth/passwords";
import { publicHandle, sessionIdFromToken } from "../../src/auth/tokens";
import { UserStore } from "../../src/auth/users";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { makeHarness, PASSWORDS, tokenFrom, type BackendKind, type Harness, type HarnessOptions } from "./harness";

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

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe.each<BackendKind>(["memory", "redis"])("HTTP API on the %s backend", (kind) => {
  async function harness(opts: HarnessOptions = {}): Promise<Harness> {
    const h = await makeHarness(kind, server.url, opts);
    open.push(h);
    return h;
  }
  async function login(h: Harness, username = "alice", password = PASSWORDS[username]!, ua?: string) {
    const req = request(h.app).post("/api/auth/login");
    if (ua !== undefined) req.set("User-Agent", ua);
    return req.send({ username, password });
  }
  async function loginToken(h: Harness, username = "alice"): Promise<string> {
    const res = await login(h, username);
    expect(res.status).toBe(200);
    return tokenFrom(res);
  }
  const session = (h: Harness, token: string) => request(h.app).get("/api/auth/session").set("Authorization", `Bearer ${token}`);

  describe("POST /api/auth/login", () => {
    test("answers 200 {username, expiresAt, redirect} with an HttpOnly SameSite=Strict cookie whose Max-Age is the session TTL", async () => {
      const h = await harness({ config: { sessionTtlSeconds: 1234 } });
      const before = Date.now();
      const res = await login(h);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ username: "alice", expiresAt: expect.stringMatching(ISO), redirect: "/account" });
      const expiresAt = Date.parse(res.body.expiresAt);
      expect(expiresAt).toBeGreaterThanOrEqual(before + 1234_000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 1234_000);
      expect(res.headers["cache-control"]).toBe("no-store");
      const cookie = (res.headers["set-cookie"] as unknown as string[])[0]!;
      expect(cookie).toMatch(/^bangui_session=[A-Za-z0-9_-]{43}; /);
      expect(cookie).toContain("Max-Age=1234");
      expect(cookie).toContain("Path=/");
      expect(cookie).toContain("HttpOnly");
      expect(cookie).toContain("SameSite=Strict");
      expect(cookie).not.toContain("Secure");
    });

    test("adds Secure to the cookie when cookieSecure is on", async () => {
      const h = await harness({ config: { cookieSecure: true } });
      const res = await login(h);
      expect((res.headers["set-cookie"] as unknown as string[])[0]).toContain("; Secure");
    });

    test("gives a new token at every login, and the store never holds the token", async () => {
      const h = await harness();
      const a = await loginToken(h);
      const b = await loginToken(h);
      expect(a).not.toBe(b);
      if (kind === "redis") {
        const client = (h.cache as RedisSessionCache).client;
        const keys = await client.keys(`${h.keyPrefix}*`);
        const values = await Promise.all(keys.filter((k) => k.includes(":s:")).map((k) => client.get(k)));
        for (const text of [...keys, ...values.map(String)]) {
          expect(text).not.toContain(a);
          expect(text).not.toContain(PASSWORDS.alice);
        }
        expect(keys).toContain(createKeySpace(h.keyPrefix).session(sessionIdFromToken(a)));
      }
    });

    test("answers 401 with the same body for an unknown user and a wrong password, and runs scrypt for both", async () => {
      const h = await harness();
      const before = passwordVerificationCount();
      const unknown = await login(h, "mallory", "whatever-password");
      const afterUnknown = passwordVerificationCount();
      const wrong = await login(h, "alice", "not-the-password");
      expect(unknown.status).toBe(401);
      expect(wrong.status).toBe(401);
      expect(unknown.body).toEqual({ error: "invalid_credentials", message: expect.any(String) });
      expect(wrong.body).toEqual(unknown.body);
      expect(unknown.headers["set-cookie"]).toBeUndefined();
      expect(afterUnknown - before).toBe(1);
      expect(passwordVerificationCount() - afterUnknown).toBe(1);
    });

    test.each([
      ["a missing password", { username: "alice" }],
      ["a numeric username", { username: 1, password: "x" }],
      ["an empty username", { username: "", password: "x" }],
      ["an over-long password", { username: "alice", password: "x".repeat(1025) }],
      ["an array body", [1, 2]],
    ])("answers 400 invalid_request for %s", async (_name, body) => {
      const h = await harness();
      const res = await request(h.app).post("/api/auth/login").send(body as object);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: "invalid_request", message: expect.any(String) });
    });

    test("answers 400 for malformed JSON, without a stack trace", async () => {
      const h = await harness();
      const res = await request(h.app).post("/api/auth/login").set("Content-Type", "application/json").send('{"username": "alice",');
      expect(res.status).toBe(400);
      expect(res.body.error).toBe("invalid_request");
      expect(res.text).not.toMatch(/at .*\.js|SyntaxError|node_modules/);
    });

    test("answers 413 for a body above the limit", async () => {
      const h = await harness({ config: { bodyLimitBytes: 1024 } });
      const res = await request(h.app).post("/api/auth/login").send({ username: "alice", password: "x".repeat(2000) });
      expect(res.status).toBe(413);
      expect(res.body).toEqual({ error: "payload_too_large", message: expect.any(String) });
    });

    test.each([
      ["text/plain", "username=alice"],
      ["application/x-www-form-urlencoded", "username=alice&password=alice-password-1"],
    ])("answers 415 for a %s body", async (type, body) => {
      const h = await harness();
      const res = await request(h.app).post("/api/auth/login").set("Content-Type", type).send(body);
      expect(res.status).toBe(415);
      expect(res.body).toEqual({ error: "unsupported_media_type", message: expect.any(String) });
    });

    test("answers 415 for a login without a body", async () => {
      const h = await harness();
      const res = await request(h.app).post("/api/auth/login");
      expect(res.status).toBe(415);
    });

    test("answers 429 with Retry-After after loginMaxFailures failures, even with the right password", async () => {
      const h = await harness({ config: { loginMaxFailures: 3, loginWindowSeconds: 120 } });
      for (let i = 0; i < 3; i++) expect((await login(h, "alice", "wrong-password")).status).toBe(401);
      const res = await login(h);
      expect(res.status).toBe(429);
      expect(res.body).toEqual({ error: "too_many_attempts", message: expect.any(String) });
      const retry = Number(res.headers["retry-after"]);
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(120);
      // The count is per username: bob is not throttled.
      expect((await login(h, "bob")).status).toBe(200);
    });

    test("a successful login resets the failure count of that username", async () => {
      const h = await harness({ config: { loginMaxFailures: 3 } });
      for (let i = 0; i < 2; i++) expect((await login(h, "alice", "wrong-password")).status).toBe(401);
      expect((await login(h)).status).toBe(200);
      for (let i = 0; i < 3; i++) expect((await login(h, "alice", "wrong-password")).status).toBe(401);
      expect((await login(h, "alice", "wrong-password")).status).toBe(429);
    });

    test("answers 405 JSON with Allow for GET", async () => {
      const h = await harness();
      const res = await request(h.app).get("/api/auth/login");
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe("POST");
      expect(res.body.error).toBe("method_not_allowed");
    });
  });

  describe("GET /api/auth/session", () => {
    test("answers 200 {username, createdAt, expiresAt} for the cookie and for a bearer token", async () => {
      const h = await harness();
      const token = await loginToken(h);
      const byCookie = await request(h.app).get("/api/auth/session").set("Cookie", `bangui_session=${token}`);
      expect(byCookie.status).toBe(200);
      expect(byCookie.body).toEqual({ username: "alice", createdAt: expect.stringMatching(ISO), expiresAt: expect.stringMatching(ISO) });
      expect(byCookie.headers["cache-control"]).toBe("no-store");
      const byBearer = await session(h, token);
      expect(byBearer.status).toBe(200);
      expect(byBearer.body).toEqual(byCookie.body);
    });

    test.each([
      ["no token", undefined],
      ["a malformed token", "Bearer abc"],
      ["an unknown well-formed token", `Bearer ${"A".repeat(43)}`],
      ["an empty bearer", "Bearer "],
      ["a Basic header", "Basic YWxpY2U6eA=="],
    ])("answers 401 for %s", async (_name, auth) => {
      const h = await harness();
      const req = request(h.app).get("/api/auth/session");
      if (auth !== undefined) req.set("Authorization", auth);
      const res = await req;
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: "unauthenticated", message: expect.any(String) });
    });

    test("survives several bangui_session cookies and odd cookie headers", async () => {
      const h = await harness();
      const token = await loginToken(h);
      const two = await request(h.app).get("/api/auth/session").set("Cookie", `bangui_session=${token}; bangui_session=junk`);
      expect([200, 401]).toContain(two.status);
      const odd = await request(h.app).get("/api/auth/session").set("Cookie", "bangui_session=%E0%A4%A; =;;; x");
      expect(odd.status).toBe(401);
    });

    test("is 401 after the user's password changes or the user is removed (UserStore)", async () => {
      const h = await harness();
      const alice = await loginToken(h);
      const bob = await loginToken(h, "bob");
      await h.users.setPassword("alice", "a-new-password");
      expect((await session(h, alice)).status).toBe(401);
      expect((await session(h, bob)).status).toBe(200);
      expect((await login(h, "alice", "a-new-password")).status).toBe(200);
      await h.users.remove("bob");
      expect((await session(h, bob)).status).toBe(401);
      expect((await login(h, "bob")).status).toBe(401);
    });

    test("is 401 once another process changes the password in the users file (file watch)", async () => {
      const h = await harness();
      const token = await loginToken(h);
      const other = await UserStore.open(h.config.usersFile, { watch: false });
      await other.setPassword("alice", "changed-elsewhere");
      const deadline = Date.now() + 60_000; // a hang guard, not an expectation
      let status = 200;
      while (status === 200 && Date.now() < deadline) {
        status = (await session(h, token)).status;
        if (status === 200) await new Promise((r) => setTimeout(r, 25));
      }
      expect(status).toBe(401);
    });
  });

  describe("POST /api/auth/logout", () => {
    test("answers 204, clears the cookie, and the session is gone", async () => {
      const h = await harness();
      const token = await loginToken(h);
      const res = await request(h.app).post("/api/auth/logout").set("Cookie", `bangui_session=${token}`);
      expect(res.status).toBe(204);
      const cleared = (res.headers["set-cookie"] as unknown as string[])[0]!;
      expect(cleared).toMatch(/^bangui_session=; /);
      expect(cleared).toContain("Max-Age=0");
      expect(cleared).toContain("Expires=Thu, 01 Jan 1970");
      expect((await session(h, token)).status).toBe(401);
      expect(await h.cache.get(sessionIdFromToken(token))).toBeNull();
    });

    test("is idempotent: 204 without a session, with a stale one and with a bearer token", async () => {
      const h = await harness();
      expect((await request(h.app).post("/api/auth/logout")).status).toBe(204);
      const token = await loginToken(h);
      expect((await request(h.app).post("/api/auth/logout").set("Authorization", `Bearer ${token}`)).status).toBe(204);
      expect((await request(h.app).post("/api/auth/logout").set("Authorization", `Bearer ${token}`)).status).toBe(204);
      expect((await session(h, token)).status).toBe(401);
    });
  });

  describe("POST /api/auth/logout-all", () => {
    test("answers 204 and ends every session of the current user only", async () => {
      const h = await harness();
      const a1 = await loginToken(h);
      const a2 = await loginToken(h);
      const b = await loginToken(h, "bob");
      const res = await request(h.app).post("/api/auth/logout-all").set("Authorization", `Bearer ${a1}`);
      expect(res.status).toBe(204);
      expect((await session(h, a1)).status).toBe(401);
      expect((await session(h, a2)).status).toBe(401);
      expect((await session(h, b)).status).toBe(200);
    });

    test("answers 401 without a valid session", async () => {
      const h = await harness();
      expect((await request(h.app).post("/api/auth/logout-all")).status).toBe(401);
    });
  });

  describe("GET /api/auth/sessions and DELETE /api/auth/sessions/:id", () => {
    test("lists the user's live sessions with public handles that are neither the id nor the token", async () => {
      const h = await harness();
      const a1 = await loginToken(h);
      await request(h.app).post("/api/auth/login").set("User-Agent", "agent-two").send({ username: "alice", password: PASSWORDS.alice });
      await loginToken(h, "bob");
      const res = await request(h.app).get("/api/auth/sessions").set("Authorization", `Bearer ${a1}`);
      expect(res.status).toBe(200);
      expect(res.headers["cache-control"]).toBe("no-store");
      const list = res.body.sessions as Array<Record<string, unknown>>;
      expect(list).toHaveLength(2);
      for (const s of list) {
        expect(s).toEqual({
          id: expect.stringMatching(/^[0-9a-f]{32}$/),
          createdAt: expect.stringMatching(ISO),
          expiresAt: expect.stringMatching(ISO),
          lastSeenAt: expect.stringMatching(ISO),
          ip: expect.any(String),
          userAgent: s.userAgent === null ? null : expect.any(String),
          current: expect.any(Boolean),
        });
        expect(s.id).not.toBe(a1);
        expect(sessionIdFromToken(a1).startsWith(s.id as string)).toBe(false);
      }
      expect(list.filter((s) => s.current)).toEqual([expect.objectContaining({ id: publicHandle(sessionIdFromToken(a1)) })]);
      expect(list.map((s) => s.userAgent)).toContain("agent-two");
      expect(JSON.stringify(res.body)).not.toContain(a1);
    });

    test("revokes another session of the user (204), answers 404 for a handle of another user or a junk handle", async () => {
      const h = await harness();
      const a1 = await loginToken(h);
      const a2 = await loginToken(h);
      const b = await loginToken(h, "bob");
      const bobHandle = publicHandle(sessionIdFromToken(b));
      const auth = { Authorization: `Bearer ${a1}` };
      expect((await request(h.app).delete(`/api/auth/sessions/${bobHandle}`).set(auth)).status).toBe(404);
      expect((await request(h.app).delete(`/api/auth/sessions/${sessionIdFromToken(a2)}`).set(auth)).status).toBe(404);
      expect((await request(h.app).delete("/api/auth/sessions/not-a-handle").set(auth)).status).toBe(404);
      expect((await session(h, b)).status).toBe(200);
      const res = await request(h.app).delete(`/api/auth/sessions/${publicHandle(sessionIdFromToken(a2))}`).set(auth);
      expect(res.status).toBe(204);
      expect((await session(h, a2)).status).toBe(401);
      expect((await session(h, a1)).status).toBe(200);
      const again = await request(h.app).delete(`/api/auth/sessions/${publicHandle(sessionIdFromToken(a2))}`).set(auth);
      expect(again.status).toBe(404);
      expect(again.body).toEqual({ error: "not_found", message: expect.any(String) });
    });

    test("revoking the current session also clears the cookie", async () => {
      const h = await harness();
      const a1 = await loginToken(h);
      const res = await request(h.app)
        .delete(`/api/auth/sessions/${publicHandle(sessionIdFromToken(a1))}`)
        .set("Cookie", `bangui_session=${a1}`);
      expect(res.status).toBe(204);
      expect((res.headers["set-cookie"] as unknown as string[])[0]).toContain("Max-Age=0");
      expect((await session(h, a1)).status).toBe(401);
    });

    test("answer 401 without a valid session", async () => {
      const h = await harness();
      expect((await request(h.app).get("/api/auth/sessions")).status).toBe(401);
      expect((await request(h.app).delete(`/api/auth/sessions/${"0".repeat(32)}`)).status).toBe(401);
    });
  });

  describe("session limits", () => {
    test("a login beyond maxSessionsPerUser ends the user's oldest session", async () => {
      let now = Date.now();
      const h = await harness({ config: { maxSessionsPerUser: 2 }, clock: () => now });
      const t1 = await loginToken(h);
      now += 10;
      const t2 = await loginToken(h);
      now += 10;
      const t3 = await loginToken(h);
      expect((await session(h, t1)).status).toBe(401);
      expect((await session(h, t2)).status).toBe(200);
      expect((await session(h, t3)).status).toBe(200);
      expect(await h.cache.listUserSessions("alice")).toHaveLength(2);
    });

    test("the idle timeout ends a quiet session, and a touch keeps an active one alive until the absolute end", async () => {
      let now = Date.now();
      const h = await harness({ config: { sessionTtlSeconds: 100, sessionIdleSeconds: 40 }, clock: () => now });
      const active = await loginToken(h);
      const quiet = await loginToken(h);
      const id = sessionIdFromToken(active);
      now += 5_000; // under a quarter of the window: no write
      expect((await session(h, active)).status).toBe(200);
      expect((await h.cache.get(id))!.lastSeenAt).toBe(now - 5_000);
      now += 10_000; // 15 s since the last touch: written
      expect((await session(h, active)).status).toBe(200);
      expect((await h.cache.get(id))!.lastSeenAt).toBe(now);
      now += 30_000; // 45 s since login, 30 s since the touch
      expect((await session(h, quiet)).status).toBe(401);
      expect((await session(h, active)).status).toBe(200);
      now += 39_000;
      expect((await session(h, active)).status).toBe(200);
      now += 39_000; // 123 s after login: beyond the absolute lifetime despite the touches
      expect((await session(h, active)).status).toBe(401);
    });

    test("a touch racing a logout never brings the session back", async () => {
      let now = Date.now();
      const h = await harness({ config: { sessionIdleSeconds: 60 }, clock: () => now });
      const token = await loginToken(h);
      now += 30_000; // the next check wants to touch
      const inFlight = h.service.validate(token);
      await h.service.logout(token);
      expect(await inFlight).toBeNull();
      expect(await h.cache.get(sessionIdFromToken(token))).toBeNull();
      if (kind === "redis") {
        const key = createKeySpace(h.keyPrefix).session(sessionIdFromToken(token));
        expect(await (h.cache as RedisSessionCache).client.exists(key)).toBe(0);
      }
      expect((await session(h, token)).status).toBe(401);
    });
  });

  describe("client address", () => {
    const ipOfSession = async (h: Harness) => {
      const res = await request(h.app).post("/api/auth/login").set("X-Forwarded-For", "203.0.113.7").send({ username: "alice", password: PASSWORDS.alice });
      const list = await request(h.app).get("/api/auth/sessions").set("Authorization", `Bearer ${tokenFrom(res)}`);
      return list.body.sessions[0].ip as string;
    };

    test("X-Forwarded-For is ignored unless trustProxy is set", async () => {
      expect(await ipOfSession(await harness())).not.toBe("203.0.113.7");
      expect(await ipOfSession(await harness({ config: { trustProxy: ["loopback"] } }))).toBe("203.0.113.7");
    });

    test("the throttle counts per IP: another client IP is not throttled (behind a trusted proxy)", async () => {
      const h = await harness({ config: { trustProxy: ["loopback"], loginMaxFailures: 1 } });
      const from = (ip: string, password: string) =>
        request(h.app).post("/api/auth/login").set("X-Forwarded-For", ip).send({ username: "alice", password });
      expect((await from("198.51.100.1", "wrong-password")).status).toBe(401);
      expect((await from("198.51.100.1", PASSWORDS.alice!)).status).toBe(429);
      expect((await from("198.51.100.2", PASSWORDS.alice!)).status).toBe(200);
    });
  });

  describe("operations routes", () => {
    test("GET /healthz 200, GET /readyz 200, GET /metrics has the login counters", async () => {
      const h = await harness();
      expect((await request(h.app).get("/healthz")).status).toBe(200);
      const ready = await request(h.app).get("/readyz");
      expect(ready.status).toBe(200);
      await login(h);
      await login(h, "alice", "wrong-password");
      await request(h.app).post("/api/auth/login").send({});
      await request(h.app).get("/api/auth/session");
      const metrics = await request(h.app).get("/metrics");
      expect(metrics.status).toBe(200);
      expect(metrics.headers["content-type"]).toContain("text/plain");
      expect(metrics.text).toMatch(/bangui_logins_total\{outcome="success"\} \d+/);
      for (const outcome of ["invalid", "bad_request"]) expect(metrics.text).toMatch(new RegExp(`bangui_logins_total\\{outcome="${outcome}"\\} \\d+`));
      expect(metrics.text).toMatch(/bangui_session_checks_total\{outcome="invalid"\} \d+/);
    });

    test("GET /readyz answers 503 when the backend does not answer", async () => {
      const h = await harness();
      const { createApp } = await import("../../src/server/app");
      const app = createApp({ sessions: h.service, config: h.config, logger: (await import("../../src/logger")).silentLogger(), ready: async () => false });
      const res = await request(app).get("/readyz");
      expect(res.status).toBe(503);
      expect(res.body.error).toBe("not_ready");
    });

    test("unknown routes answer 404 JSON, an unexpected error 500 internal_error without details", async () => {
      const h = await harness();
      const res = await request(h.app).get("/nope");
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ error: "not_found", message: expect.any(String) });
      const { createApp } = await import("../../src/server/app");
      const app = createApp({
        sessions: h.service,
        config: h.config,
        logger: (await import("../../src/logger")).silentLogger(),
        ready: async () => true,
        metricsText: async () => {
          throw new Error("secret internal detail");
        },
      });
      const boom = await request(app).get("/metrics");
      expect(boom.status).toBe(500);
      expect(boom.body).toEqual({ error: "internal_error", message: expect.any(String) });
      expect(boom.text).not.toContain("secret internal detail");
    });

    test("logs never contain a token, a password or a cookie", async () => {
      const h = await harness();
      const token = await loginToken(h);
      await request(h.app).get("/api/auth/session").set("Cookie", `bangui_session=${token}`);
      await request(h.app).post("/api/auth/logout").set("Authorization", `Bearer ${token}`);
      await login(h, "alice", "wrong-password-xyz");
      const all = h.logs.join("");
      expect(h.logs.length).toBeGreaterThan(3);
      expect(all).not.toContain(token);
      expect(all).not.toContain(PASSWORDS.alice);
      expect(all).not.toContain("wrong-password-xyz");
      expect(all.toLowerCase()).not.toContain("cookie");
      const lines = h.logs.map((l) => JSON.parse(l) as { level: number; req?: { path?: string } });
      const levelOf = (path: string) => lines.find((l) => l.req?.path === path)?.level;
      expect(levelOf("/api/auth/session")).toBe(20); // the hot check: debug only
      expect(levelOf("/api/auth/login")).toBe(30);
    });
  });
});

test("verifyPassword runs for real (sanity of the counted function)", async () => {
  const before = passwordVerificationCount();
  expect(await verifyPassword("x", "not-a-hash")).toBe(false);
  expect(passwordVerificationCount()).toBe(before + 1);
});
