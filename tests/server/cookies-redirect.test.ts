import request from "supertest";
import { makeHarness, PASSWORDS, type Harness, type HarnessOptions } from "./harness";

/** The session cookie's name and attributes, and the login's `redirect` field. */
const open: Harness[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.close()));
});

async function harness(opts: HarnessOptions = {}): Promise<Harness> {
  const h = await makeHarness("memory", undefined, opts);
  open.push(h);
  return h;
}

const login = (h: Harness, body: Record<string, unknown> = {}) =>
  request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice, ...body });

function setCookies(res: { headers: Record<string, unknown> }): string[] {
  const raw = res.headers["set-cookie"];
  return raw === undefined ? [] : ((Array.isArray(raw) ? raw : [raw]) as string[]);
}

describe("the session cookie's name", () => {
  test("Secure and no domain: __Host-bangui_session with Secure, Path=/ and no Domain", async () => {
    const h = await harness({ config: { cookieSecure: true } });
    const cookie = setCookies(await login(h))[0]!;
    expect(cookie).toMatch(/^__Host-bangui_session=[A-Za-z0-9_-]{43}; /);
    expect(cookie).toContain("Secure");
    expect(cookie).toContain("Path=/");
    expect(cookie).not.toMatch(/Domain=/i);
  });

  test("with BANGUI_COOKIE_DOMAIN: bangui_session with that Domain (the __Host- prefix forbids one)", async () => {
    const h = await harness({ config: { cookieSecure: true, cookieDomain: "example.com" } });
    const res = await login(h);
    const cookie = setCookies(res)[0]!;
    expect(cookie).toMatch(/^bangui_session=/);
    expect(cookie).toContain("Domain=example.com");
    const token = /=([^;]+)/.exec(cookie)![1]!;
    const logout = await request(h.app).post("/api/auth/logout").set("Cookie", `bangui_session=${token}`);
    expect(setCookies(logout)[0]).toMatch(/^bangui_session=; .*Domain=example.com/);
  });

  test("not Secure: bangui_session", async () => {
    const h = await harness({ config: { cookieSecure: false } });
    expect(setCookies(await login(h))[0]).toMatch(/^bangui_session=/);
  });

  test("both names are accepted on the way in; __Host- wins when both are sent", async () => {
    const h = await harness({ config: { cookieSecure: true } });
    const token = /=([^;]+)/.exec(setCookies(await login(h))[0]!)![1]!;
    for (const cookie of [`__Host-bangui_session=${token}`, `bangui_session=${token}`, `bangui_session=garbage; __Host-bangui_session=${token}`]) {
      const res = await request(h.app).get("/api/auth/session").set("Cookie", cookie);
      expect([cookie, res.status]).toEqual([cookie, 200]);
    }
    const logout = await request(h.app).post("/api/auth/logout").set("Cookie", `__Host-bangui_session=${token}`);
    expect(logout.status).toBe(204);
    expect(setCookies(logout)[0]).toMatch(/^__Host-bangui_session=; .*Secure/);
    expect((await request(h.app).get("/api/auth/session").set("Cookie", `__Host-bangui_session=${token}`)).status).toBe(401);
  });
});

describe("POST /api/auth/login redirect", () => {
  test("echoes a same-origin path, and a URL on an allowed host", async () => {
    const h = await harness({ config: { allowedRedirectHosts: ["app.example.com"] } });
    expect((await login(h, { redirect: "/app/x?y=1#z" })).body.redirect).toBe("/app/x?y=1#z");
    expect((await login(h, { redirect: "https://app.example.com/x" })).body.redirect).toBe("https://app.example.com/x");
  });

  test.each(["//evil.com", "https://evil.com/", "/\\evil.com", "javascript:alert(1)", "https://app.example.com@evil.com/"])(
    "%j answers /account",
    async (target) => {
      const h = await harness({ config: { allowedRedirectHosts: ["app.example.com"] } });
      const res = await login(h, { redirect: target });
      expect(res.status).toBe(200);
      expect(res.body.redirect).toBe("/account");
    },
  );

  test("absent: /account; not a string: 400", async () => {
    const h = await harness();
    expect((await login(h)).body.redirect).toBe("/account");
    const bad = await login(h, { redirect: 42 });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe("invalid_request");
  });
});
