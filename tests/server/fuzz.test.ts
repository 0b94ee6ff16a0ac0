/**
 * Property-based fuzzing of the whole HTTP surface (issue 4, item 4): fast-check throws at least 5 000 (BANGUI_FUZZ_RUNS for more)
 * generated hostile requests (fuzz-requests.ts) at the real app behind the real node:http server
 * (createGracefulServer, listen(0)), on the in-memory and on the Redis backend.
 *
 * Properties, per request: never a 5xx; never a 2xx on an auth route (no generated request carries a
 * valid credential), so never a session cookie; every error is a JSON `{error, message}`; no answer echoes
 * a password or token of the request; an answer (or a close) within 5 s. After the run: the process is
 * healthy (healthz, readyz, a real login, a session made before the run still valid), nothing was logged
 * at error level, no unhandled rejection, and Object.prototype is untouched.
 *
 * Reproducible: the seed is fixed (BANGUI_FUZZ_SEED overrides it, BANGUI_FUZZ_RUNS the count); a failure
 * prints the seed, the `path` that replays it, and the shrunk request. The app keeps state between
 * requests (throttle counts, a polluted prototype would stay polluted), so a shrunk request can need the
 * ones before it: rerun with the same seed rather than the request alone.
 */
import fc from "fast-check";
import { Agent } from "node:http";
import request from "supertest";
import { DUMMY_PASSWORD_HASH, hashPassword, verifyPassword } from "../../src/auth/passwords";
import { createGracefulServer, type GracefulServer } from "../../src/server/http";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { sendHttp, sendRaw, type FuzzRequest, type FuzzResponse } from "../helpers/http-send";
import { fuzzRequest } from "./fuzz-requests";
import { FAST_SCRYPT, makeHarness, PASSWORDS, tokenFrom, type BackendKind, type Harness } from "./harness";

const SEED = Number(process.env.BANGUI_FUZZ_SEED ?? 20261202);
const RUNS = Number(process.env.BANGUI_FUZZ_RUNS ?? 5_000);

/** Where a 2xx is allowed without credentials: the probes, and logout (idempotent, 204 without a session). */
function public2xx(method: string, path: string): boolean {
  // Express routes on the path before any query string or fragment (a fragment is not valid in a request
  // target, but routers ignore it like a browser would).
  const pathname = path.split(/[?#]/)[0]!.replace(/(.)\/$/, "$1");
  if ((method === "GET" || method === "HEAD") && ["/healthz", "/readyz", "/metrics"].includes(pathname)) return true;
  // The /api/auth mount is case-insensitive (Express default); the routes under it are not.
  return method === "POST" && /^\/api\/auth\/logout$/i.test(pathname) && pathname.endsWith("/logout");
}

function requestLine(req: FuzzRequest): { method: string; path: string } {
  if (req.kind === "http") return { method: req.method, path: req.path };
  const [method = "", path = ""] = req.bytes.toString("latin1").split("\r\n")[0]!.split(" ");
  return { method, path };
}

/** Throws (with what went wrong) when one answer breaks a property. */
function checkAnswer(req: FuzzRequest, res: FuzzResponse): void {
  const { method, path } = requestLine(req);
  if (res.status === 0) throw new Error("the connection closed without an answer");
  expect(res.status).toBeGreaterThanOrEqual(200);
  expect(res.status).toBeLessThan(500);
  if (res.status < 300) expect(public2xx(method, path)).toBe(true);
  const cookies = [res.headers["set-cookie"] ?? []].flat();
  for (const cookie of cookies) expect(cookie).toMatch(/^bangui_session=;/);
  if (res.status >= 400 && method !== "HEAD") {
    expect(String(res.headers["content-type"])).toMatch(/^application\/json/);
    const body = JSON.parse(res.body.toString("utf8")) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["error", "message"]);
    expect(typeof body.error).toBe("string");
    expect(typeof body.message).toBe("string");
  }
  if (req.kind === "http") {
    const text = res.body.toString("latin1") + JSON.stringify(res.headers);
    for (const secret of req.secrets) if (secret.length >= 16) expect(text).not.toContain(secret);
  }
}

let server: RedisServerHandle;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

describe.each<BackendKind>(["memory", "redis"])("fuzz: hostile requests on the %s backend", (kind) => {
  let h: Harness;
  let http: GracefulServer;
  let port: number;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  // A cheap dummy hash for unknown users: each of thousands of failed logins would otherwise pay the
  // production scrypt cost (~50 ms). The real verifyPassword still runs on every login that parses.
  let cheapDummy: string;
  let scryptCalls = 0;

  beforeAll(async () => {
    cheapDummy = await hashPassword("never-the-password", FAST_SCRYPT);
    h = await makeHarness(kind, server.url, {
      // Thousands of logins from one address: the per-IP limit would turn most into 429 before scrypt.
      config: { loginMaxPerIp: 1_000_000 },
      verifyPassword: (pw, hash) => {
        scryptCalls++;
        return verifyPassword(pw, hash === DUMMY_PASSWORD_HASH ? cheapDummy : hash);
      },
    });
    http = createGracefulServer(h.app);
    port = (await http.listen(0, "127.0.0.1")).port;
  });
  afterAll(async () => {
    agent.destroy();
    await http?.drain(1000);
    await h?.close();
  });

  test(`${RUNS} generated requests: no 5xx, no 2xx without credentials, JSON errors, no hang, still healthy`, async () => {
    const before = await request(h.app).post("/api/auth/login").send({ username: "bob", password: PASSWORDS.bob });
    expect(before.status).toBe(200);
    const bobToken = tokenFrom(before);
    const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
    const problems: unknown[] = [];
    const onProblem = (err: unknown) => problems.push(err);
    process.on("unhandledRejection", onProblem);
    process.on("uncaughtException", onProblem);
    const statuses = new Map<number, number>();
    let sent = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fuzzRequest, async (req) => {
          sent++;
          const res = req.kind === "http" ? await sendHttp(port, agent, req) : await sendRaw(port, req);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          checkAnswer(req, res);
        }),
        { seed: SEED, numRuns: RUNS },
      );
    } finally {
      process.off("unhandledRejection", onProblem);
      process.off("uncaughtException", onProblem);
    }

    expect(sent).toBeGreaterThanOrEqual(RUNS);
    expect(http.inFlight()).toBe(0); // every request was answered, none is left running
    // The generators reach the deep code paths, not only the parser's refusals.
    for (const status of [400, 401, 404, 405, 413, 415, 429]) expect(statuses.get(status) ?? 0).toBeGreaterThan(0);
    expect(scryptCalls).toBeGreaterThan(100);
    expect(problems).toEqual([]);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    const errorLines = h.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
    expect(errorLines).toEqual([]);

    // Still serving, with the state it had: probes, the session made before, a fresh login.
    expect((await request(h.app).get("/healthz")).status).toBe(200);
    expect((await request(h.app).get("/readyz")).status).toBe(200);
    expect((await request(h.app).get("/api/auth/session").set("Authorization", `Bearer ${bobToken}`)).status).toBe(200);
    await h.users.setPassword("carol", "carol-password-333");
    const carol = await request(h.app).post("/api/auth/login").send({ username: "carol", password: "carol-password-333" });
    expect(carol.status).toBe(200);
    expect((await request(h.app).get("/api/auth/session").set("Cookie", `bangui_session=${tokenFrom(carol)}`)).status).toBe(200);
  }, 240_000);
});
