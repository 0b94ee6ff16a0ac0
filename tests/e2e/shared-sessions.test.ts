/**
 * The built service as real processes on ONE private redis-server: two independent single-worker
 * instances (A, B) and one cluster of three workers (C). Requests use a fresh connection each, so the
 * cluster's round-robin spreads them over all its workers.
 */
import { join } from "node:path";
import Redis from "ioredis";
import { createKeySpace, sha256Hex } from "../../src/cache/keys";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import {
  eventually,
  http,
  login,
  removeTempDir,
  sessionCookie,
  startService,
  startServices,
  stopAll,
  tempDir,
  writeUsersFile,
  type ServiceHandle,
} from "../helpers/service";

jest.setTimeout(300_000);

const PREFIX = "e2e-shared:";
let redis: RedisServerHandle;
let client: Redis;
let dir: string;
let A: ServiceHandle;
let B: ServiceHandle;
let C: ServiceHandle;
const extra: ServiceHandle[] = [];

function envFor(workers: number, more: Record<string, string> = {}): Record<string, string> {
  return {
    BANGUI_REDIS_URL: redis.url,
    BANGUI_WORKERS: String(workers),
    BANGUI_USERS_FILE: join(dir, "users.json"),
    BANGUI_KEY_PREFIX: PREFIX,
    ...more,
  };
}

async function check(service: ServiceHandle, token: string, via: "cookie" | "bearer" = "cookie") {
  return http(service.url, "GET", "/api/auth/session", via === "cookie" ? { cookie: token } : { token });
}

/** Status of `n` session checks on `service`, one fresh connection each. */
async function statuses(service: ServiceHandle, token: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await check(service, token)).status);
  return out;
}

/** Value of one counter series in Prometheus text (0 when absent). */
function counter(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** Pids of the workers of `service` that logged a completed request to `path`. */
function pidsServing(service: ServiceHandle, path: string): Set<number> {
  const pids = new Set<number>();
  for (const l of service.logs()) {
    const req = l.req as { path?: string } | undefined;
    if (l.component === "http" && req?.path === path && l.res !== undefined) pids.add(Number(l.pid));
  }
  return pids;
}

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  dir = tempDir("shared");
  await writeUsersFile(join(dir, "users.json"), { alice: "alice-password-1", bob: "bob-password-1" });
  [A, B, C] = await startServices([
    { env: envFor(1) },
    { env: envFor(1) },
    // debug: the access log of session checks (debug level) shows which worker answered.
    { env: envFor(3, { BANGUI_LOG_LEVEL: "debug" }) },
  ]);
});

afterAll(async () => {
  await stopAll([A, B, C, ...extra]);
  client?.disconnect();
  await redis?.stop();
  if (dir) removeTempDir(dir);
});

test("the cluster instance runs three workers that all listen on the one port it logged", () => {
  expect(C.workerPids()).toHaveLength(3);
  const ports = C.logs().filter((l) => l.msg === "worker listening" && l.component === "worker").map((l) => l.port);
  expect(new Set(ports)).toEqual(new Set([C.port]));
});

test("a login on one instance is valid on the other instance and on every worker of the cluster", async () => {
  const token = await login(A.url, "alice", "alice-password-1");
  const onB = await check(B, token, "bearer");
  expect(onB.status).toBe(200);
  expect(onB.json).toMatchObject({ username: "alice" });
  expect(await statuses(C, token, 6)).toEqual([200, 200, 200, 200, 200, 200]);
  // Every worker of C answered some of those checks.
  const served = await eventually(async () => pidsServing(C, "/api/auth/session").size === 3);
  expect(served).toBe(true);
  expect(pidsServing(C, "/api/auth/session")).toEqual(new Set(C.workerPids()));
});

test("a logout on one instance answers 204 and the token is refused by every instance and worker", async () => {
  const token = await login(C.url, "alice", "alice-password-1");
  // Warm every worker (and any near-cache) with the session first.
  expect(await statuses(C, token, 3)).toEqual([200, 200, 200]);
  expect((await check(A, token)).status).toBe(200);

  const out = await http(B.url, "POST", "/api/auth/logout", { cookie: token });
  expect(out.status).toBe(204);
  const cleared = sessionCookie(out);
  expect(cleared?.value).toBe("");
  expect(cleared?.attributes.get("max-age")).toBe("0");

  expect((await check(A, token)).status).toBe(401);
  expect((await check(B, token, "bearer")).status).toBe(401);
  expect(await statuses(C, token, 6)).toEqual([401, 401, 401, 401, 401, 401]);
  expect(await client.exists(createKeySpace(PREFIX).session(sha256Hex(token)))).toBe(0);
  // Idempotent: again, and without any session.
  expect((await http(A.url, "POST", "/api/auth/logout", { cookie: token })).status).toBe(204);
  expect((await http(A.url, "POST", "/api/auth/logout")).status).toBe(204);
});

test("logout-all on one instance ends every session of that user everywhere and no one else's", async () => {
  const [alice1, alice2, bob] = await Promise.all([
    login(A.url, "alice", "alice-password-1"),
    login(C.url, "alice", "alice-password-1"),
    login(B.url, "bob", "bob-password-1"),
  ]);
  const listed = await http(C.url, "GET", "/api/auth/sessions", { token: alice1 });
  expect(listed.status).toBe(200);
  expect((listed.json.sessions as unknown[]).length).toBeGreaterThanOrEqual(2);

  expect((await http(B.url, "POST", "/api/auth/logout-all", { token: alice2 })).status).toBe(204);

  for (const service of [A, B]) {
    expect((await check(service, alice1)).status).toBe(401);
    expect((await check(service, alice2)).status).toBe(401);
  }
  expect(await statuses(C, alice1, 3)).toEqual([401, 401, 401]);
  expect(await statuses(C, alice2, 3)).toEqual([401, 401, 401]);
  expect(await statuses(C, bob, 3)).toEqual([200, 200, 200]);
  expect((await http(A.url, "POST", "/api/auth/logout-all", { token: alice1 })).status).toBe(401);
});

test("the login cookie is HttpOnly, SameSite=Strict, Path=/, Max-Age of the session TTL, not Secure by default; bearer works too", async () => {
  const res = await http(C.url, "POST", "/api/auth/login", { body: { username: "bob", password: "bob-password-1" } });
  expect(res.status).toBe(200);
  expect(res.json).toEqual({ username: "bob", expiresAt: expect.any(String), redirect: "/account" });
  const cookie = sessionCookie(res)!;
  expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
  expect(cookie.attributes.has("httponly")).toBe(true);
  expect(cookie.attributes.get("samesite")?.toLowerCase()).toBe("strict");
  expect(cookie.attributes.get("path")).toBe("/");
  expect(cookie.attributes.get("max-age")).toBe("3600");
  expect(cookie.attributes.has("secure")).toBe(false);
  expect(res.text).not.toContain(cookie.value);

  expect((await check(A, cookie.value, "bearer")).status).toBe(200);
  expect((await check(B, cookie.value, "cookie")).status).toBe(200);
  expect((await check(A, `${cookie.value}x`, "bearer")).status).toBe(401);
});

test("a wrong password is 401 on every instance, with the same body as an unknown user", async () => {
  const wrong = await http(C.url, "POST", "/api/auth/login", { body: { username: "bob", password: "nope-nope" } });
  const unknown = await http(A.url, "POST", "/api/auth/login", { body: { username: "nobody", password: "nope-nope" } });
  expect(wrong.status).toBe(401);
  expect(unknown.status).toBe(401);
  expect(wrong.json).toEqual(unknown.json);
});

test("/readyz answers 200 on every instance while Redis answers", async () => {
  for (const s of [A, B, C]) expect((await http(s.url, "GET", "/readyz")).status).toBe(200);
});

test("GET /metrics on the cluster adds up the counters of all its workers", async () => {
  const series = 'bangui_session_checks_total{outcome="valid"}';
  const token = await login(A.url, "bob", "bob-password-1");
  const before = await http(C.url, "GET", "/metrics");
  expect(before.status).toBe(200);
  expect(before.headers["content-type"]).toMatch(/^text\/plain/);
  // Nine checks over fresh connections: three per worker under round-robin.
  expect(await statuses(C, token, 9)).toEqual(Array(9).fill(200));
  const after = await http(C.url, "GET", "/metrics");
  expect(counter(after.text, series) - counter(before.text, series)).toBe(9);
  // Any worker answers /metrics with the same aggregate (nothing else happened in between).
  const again = await http(C.url, "GET", "/metrics");
  expect(counter(again.text, series)).toBe(counter(after.text, series));
  expect(after.text).toContain("bangui_session_backend_up 1");
});

test("a worker killed with SIGKILL is replaced, and the other workers keep serving meanwhile", async () => {
  const token = await login(C.url, "bob", "bob-password-1");
  const before = C.workerPids();
  expect(before).toHaveLength(3);
  const victim = before[0]!;
  process.kill(victim, "SIGKILL");
  await C.waitForLog((l) => l.msg === "worker died; restarting it" && l.workerPid === victim);
  expect(await statuses(C, token, 4)).toEqual([200, 200, 200, 200]);
  await C.waitForLog((l) => l.msg === "worker listening" && l.component === "primary" && !before.includes(Number(l.workerPid)));
  const after = C.workerPids();
  expect(after).toHaveLength(3);
  expect(after).not.toContain(victim);
  expect(await statuses(C, token, 6)).toEqual(Array(6).fill(200));
});

test("a service stopped with SIGTERM exits 0, and started again it still knows the sessions", async () => {
  const token = await login(A.url, "alice", "alice-password-1");
  const status = await A.stop();
  expect(status).toEqual({ code: 0, signal: null });
  expect(A.logs().some((l) => l.msg === "killing workers that did not stop")).toBe(false);
  const again = await startService({ env: envFor(1) });
  extra.push(again);
  const res = await check(again, token);
  expect(res.status).toBe(200);
  expect(res.json).toMatchObject({ username: "alice" });
});

test("concurrent GET /metrics requests on the cluster each get the full aggregate (IPC request ids never mix)", async () => {
  const answers = await Promise.all(Array.from({ length: 24 }, () => http(C.url, "GET", "/metrics")));
  expect(answers.map((a) => a.status)).toEqual(Array(24).fill(200));
  const series = 'bangui_session_checks_total{outcome="valid"}';
  const values = new Set(answers.map((a) => counter(a.text, series)));
  expect(values.size).toBe(1);
  expect([...values][0]).toBeGreaterThan(0);
});

test("the 3-worker cluster stops on SIGTERM: every worker drains, and the primary exits 0", async () => {
  const workers = C.workerPids();
  const status = await C.stop();
  expect(status).toEqual({ code: 0, signal: null });
  const drained = C.logs().filter((l) => l.msg === "worker drained").map((l) => Number(l.pid));
  expect(new Set(drained)).toEqual(new Set(workers));
  expect(C.logs().some((l) => l.msg === "killing workers that did not stop")).toBe(false);
});
