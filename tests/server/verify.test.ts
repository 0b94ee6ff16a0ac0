import request from "supertest";
import { metrics } from "../../src/metrics";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { makeHarness, PASSWORDS, tokenFrom, type Harness, type HarnessOptions } from "./harness";

/** GET /api/auth/verify (nginx) and /api/auth/forward-auth (Traefik, Caddy), on the lean path. */
const open: Harness[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.close()));
});

async function harness(opts: HarnessOptions = {}): Promise<Harness> {
  const h = await makeHarness("memory", undefined, opts);
  open.push(h);
  return h;
}

async function loginToken(h: Harness, username = "alice"): Promise<string> {
  const res = await request(h.app).post("/api/auth/login").send({ username, password: PASSWORDS[username] });
  expect(res.status).toBe(200);
  return tokenFrom(res);
}

const BROWSER = { Accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "Sec-Fetch-Mode": "navigate" };

describe.each(["/api/auth/verify", "/api/auth/forward-auth"])("%s", (path) => {
  test("a valid session (cookie or bearer): 200, Remote-User, Cache-Control no-store, no body, no page headers", async () => {
    const h = await harness();
    const token = await loginToken(h);
    for (const set of [{ Cookie: `bangui_session=${token}` }, { Authorization: `Bearer ${token}` }]) {
      const res = await request(h.app).get(path).set(set);
      expect(res.status).toBe(200);
      expect(res.headers["remote-user"]).toBe("alice");
      expect(res.headers["cache-control"]).toBe("no-store");
      expect(res.text).toBe("");
      // The lean path: Express and helmet never saw it.
      expect(res.headers["content-security-policy"]).toBeUndefined();
      expect(res.headers["x-content-type-options"]).toBeUndefined();
    }
  });

  test("no session: 401 JSON with a Location to the login page; an API client never gets a 3xx", async () => {
    const h = await harness();
    const res = await request(h.app).get(path).set("Accept", "application/json");
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: "unauthenticated", message: "no valid session" });
    expect(res.headers.location).toBe("/login");
    expect(res.headers["remote-user"]).toBeUndefined();
    expect(res.headers["cache-control"]).toBe("no-store");
  });

  test("a client-sent Remote-User is not an identity: 401 without a session, the session's user with one", async () => {
    const h = await harness();
    const none = await request(h.app).get(path).set("Remote-User", "bob");
    expect(none.status).toBe(401);
    expect(none.headers["remote-user"]).toBeUndefined();
    const token = await loginToken(h);
    const res = await request(h.app).get(path).set("Remote-User", "bob").set("Authorization", `Bearer ${token}`);
    expect(res.headers["remote-user"]).toBe("alice");
  });

  test("a logged-out or garbage token is refused at once", async () => {
    const h = await harness();
    const token = await loginToken(h);
    expect((await request(h.app).post("/api/auth/logout").set("Authorization", `Bearer ${token}`)).status).toBe(204);
    expect((await request(h.app).get(path).set("Authorization", `Bearer ${token}`)).status).toBe(401);
    expect((await request(h.app).get(path).set("Cookie", "bangui_session=%%%; __Host-bangui_session=x")).status).toBe(401);
  });

  test("the original URL from X-Original-URL or X-Forwarded-* becomes rd (path and query, relative login link)", async () => {
    const h = await harness();
    const a = await request(h.app).get(path).set("X-Original-URL", "http://app.test:8080/app/page?x=1&y=2");
    expect(a.headers.location).toBe(`/login?rd=${encodeURIComponent("/app/page?x=1&y=2")}`);
    const b = await request(h.app)
      .get(path)
      .set({ "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.test", "X-Forwarded-Uri": "/docs/?q=a%20b" });
    expect(b.headers.location).toBe(`/login?rd=${encodeURIComponent("/docs/?q=a%20b")}`);
  });

  test("an original URL that is not a safe target gives a login link without rd", async () => {
    const h = await harness();
    for (const original of ["http://app.test//evil.com/x", "javascript:alert(1)", "http://app.test/\\evil.com", "//evil.com", "http://app.test/%2f%2fevil.com"]) {
      const res = await request(h.app).get(path).set("X-Original-URL", original);
      expect([original, res.headers.location]).toEqual([original, "/login"]);
    }
    const uri = await request(h.app).get(path).set({ "X-Forwarded-Proto": "https", "X-Forwarded-Host": "a.test", "X-Forwarded-Uri": "//evil.com" });
    expect(uri.headers.location).toBe("/login");
  });

  test("with BANGUI_PUBLIC_URL the login link is absolute and rd is the whole URL, on allowed hosts only", async () => {
    const h = await harness({ config: { publicUrl: "https://auth.example.com", allowedRedirectHosts: ["*.example.com"] } });
    const ok = await request(h.app).get(path).set("X-Original-URL", "https://app.example.com/x?y=1");
    expect(ok.headers.location).toBe(`https://auth.example.com/login?rd=${encodeURIComponent("https://app.example.com/x?y=1")}`);
    const evil = await request(h.app).get(path).set("X-Original-URL", "https://evil.com/x");
    expect(evil.headers.location).toBe("https://auth.example.com/login");
  });

  test("HEAD and other methods are answered alike (an nginx subrequest keeps the original method), without reading a body", async () => {
    const h = await harness();
    const token = await loginToken(h);
    const head = await request(h.app).head(path).set("Authorization", `Bearer ${token}`);
    expect([head.status, head.headers["remote-user"]]).toEqual([200, "alice"]);
    const post = await request(h.app).post(path).set("Authorization", `Bearer ${token}`).set("Content-Type", "application/json").send("{not json");
    expect([post.status, post.headers["remote-user"]]).toEqual([200, "alice"]);
  });

  test("counts session checks in bangui_session_checks_total", async () => {
    const h = await harness();
    const token = await loginToken(h);
    const count = async (outcome: string) => (await metrics.sessionChecks.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    const valid = await count("valid");
    const invalid = await count("invalid");
    await request(h.app).get(path).set("Authorization", `Bearer ${token}`);
    await request(h.app).get(path);
    expect(await count("valid")).toBe(valid + 1);
    expect(await count("invalid")).toBe(invalid + 1);
  });
});

describe("forward-auth and browsers", () => {
  test("a browser navigation without a session gets 302 to the login page with rd", async () => {
    const h = await harness();
    const res = await request(h.app).get("/api/auth/forward-auth").set(BROWSER).set("X-Forwarded-Proto", "http").set("X-Forwarded-Host", "app.test").set("X-Forwarded-Uri", "/app/");
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`/login?rd=${encodeURIComponent("/app/")}`);
  });

  test("a script's fetch or XHR (even accepting HTML) gets 401, not a redirect", async () => {
    const h = await harness();
    for (const extra of [{ "Sec-Fetch-Mode": "cors" }, { "X-Requested-With": "XMLHttpRequest" }]) {
      const res = await request(h.app).get("/api/auth/forward-auth").set({ Accept: "text/html" }).set(extra);
      expect(res.status).toBe(401);
    }
  });

  test("verify never answers a 3xx, browser or not", async () => {
    const h = await harness();
    const res = await request(h.app).get("/api/auth/verify").set(BROWSER).set("X-Original-URL", "http://app.test/app/");
    expect(res.status).toBe(401);
    expect(res.headers.location).toBe(`/login?rd=${encodeURIComponent("/app/")}`);
  });
});

describe("verify with the Redis backend down", () => {
  let server: RedisServerHandle;
  let h: Harness;
  let token: string;
  beforeAll(async () => {
    server = await startRedisServer();
    h = await makeHarness("redis", server.url, { config: { redisCommandTimeoutMs: 300 } });
    const res = await request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice });
    token = tokenFrom(res);
    expect((await request(h.app).get("/api/auth/verify").set("Authorization", `Bearer ${token}`)).status).toBe(200);
    await server.kill("SIGKILL");
  });
  afterAll(async () => {
    await h?.close();
    await server?.stop();
  });

  test.each(["/api/auth/verify", "/api/auth/forward-auth"])("%s fails closed: 503 JSON, no Remote-User, logged as a warning", async (path) => {
    const res = await request(h.app).get(path).set("Authorization", `Bearer ${token}`).set(BROWSER);
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: "session_backend_unavailable", message: expect.any(String) });
    expect(res.headers["remote-user"]).toBeUndefined();
    expect(h.logs.some((l) => l.includes("session backend unavailable") && l.includes(path))).toBe(true);
    expect(h.logs.join("")).not.toContain(token);
  });
});
