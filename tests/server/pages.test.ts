import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import request from "supertest";
import { publicDir } from "../../src/server/pages";
import { makeHarness, PASSWORDS, tokenFrom, type Harness } from "./harness";

/** GET /, /login, /account and their assets: static files, strict CSP, no inline code. */
let h: Harness;
let token: string;
beforeAll(async () => {
  h = await makeHarness("memory", undefined);
  token = tokenFrom(await request(h.app).post("/api/auth/login").send({ username: "alice", password: PASSWORDS.alice }));
});
afterAll(async () => {
  await h?.close();
});

function csp(res: { headers: Record<string, unknown> }): Map<string, string> {
  const raw = String(res.headers["content-security-policy"] ?? "");
  return new Map(raw.split(";").map((d) => d.trim()).filter(Boolean).map((d) => [d.split(" ")[0]!, d.slice(d.indexOf(" ") + 1)]));
}

describe("pages", () => {
  test("GET /login: the form page, CSP allowing only this origin's scripts and styles", async () => {
    const res = await request(h.app).get("/login");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(res.text).toContain('<label for="username">');
    const policy = csp(res);
    expect(policy.get("script-src")).toBe("'self'");
    expect(policy.get("style-src")).toBe("'self'");
    expect(policy.get("default-src")).toBe("'none'");
    expect(policy.get("frame-ancestors")).toBe("'none'");
    expect(res.headers["x-frame-options"]).toBe("SAMEORIGIN");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
  });

  test("GET / sends the browser to /login without a session and to /account with one", async () => {
    expect((await request(h.app).get("/")).headers.location).toBe("/login");
    expect((await request(h.app).get("/").set("Cookie", `bangui_session=${token}`)).headers.location).toBe("/account");
  });

  test("GET /account: the page with a session; 302 to /login?rd=/account without", async () => {
    const page = await request(h.app).get("/account").set("Cookie", `bangui_session=${token}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain("Log out everywhere");
    expect(page.headers["cache-control"]).toBe("no-store");
    const none = await request(h.app).get("/account");
    expect(none.status).toBe(302);
    expect(none.headers.location).toBe("/login?rd=%2Faccount");
  });

  test("assets are served with their types; unknown ones are a 404 JSON", async () => {
    expect((await request(h.app).get("/_bangui/login.js")).headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect((await request(h.app).get("/_bangui/style.css")).headers["content-type"]).toBe("text/css; charset=utf-8");
    const missing = await request(h.app).get("/_bangui/..%2Fpackage.json");
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe("not_found");
  });

  test("no page has inline script, inline style or event-handler attributes", () => {
    const dir = publicDir();
    const pages = readdirSync(dir).filter((f) => f.endsWith(".html"));
    expect(pages.sort()).toEqual(["account.html", "login.html"]);
    for (const page of pages) {
      const html = readFileSync(join(dir, page), "utf8");
      for (const tag of html.match(/<script\b[^>]*>/g) ?? []) expect(tag).toMatch(/ src="\/_bangui\/[a-z]+\.js"/);
      expect(html).not.toMatch(/<script\b[^>]*>[^<\s]/);
      expect(html).not.toMatch(/<style\b/);
      expect(html).not.toMatch(/\sstyle=/);
      expect(html).not.toMatch(/\son[a-z]+=/i);
    }
  });
});

describe("page routes and other methods", () => {
  test.each(["/", "/login", "/account", "/_bangui/login.js"])("OPTIONS and POST %s answer 405 JSON with Allow", async (path) => {
    for (const method of ["options", "post"] as const) {
      const res = await request(h.app)[method](path);
      expect([path, method, res.status, res.headers.allow, res.body.error]).toEqual([path, method, 405, "GET, HEAD", "method_not_allowed"]);
    }
  });
});
