/**
 * An express-session app (Express 5, resave: false, saveUninitialized: false) on RedisSessionStore, run
 * as two real processes on one private Redis (tests/e2e/fixtures/session-app.js, on the built package).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import Redis from "ioredis";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

jest.setTimeout(120_000);

const PREFIX = "e2e-sess:";
let redis: RedisServerHandle;
let admin: Redis;
const apps: Array<{ proc: ChildProcess; url: string }> = [];

async function startApp(): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [join(__dirname, "fixtures/session-app.js")], {
    env: { ...process.env, REDIS_URL: redis.url, PREFIX, STORE: "bangui", PORT: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    proc.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line !== undefined) resolve((JSON.parse(line) as { port: number }).port);
    });
    proc.once("exit", (code) => reject(new Error(`app exited with ${code} before listening`)));
  });
  const app = { proc, url: `http://127.0.0.1:${port}` };
  apps.push(app);
  return app;
}

async function request(url: string, method: string, path: string, cookie?: string) {
  const res = await fetch(url + path, {
    method,
    headers: cookie ? { cookie } : {},
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  const setCookie = res.headers.get("set-cookie");
  return { status: res.status, body: text === "" ? null : (JSON.parse(text) as Record<string, unknown>), cookie: setCookie?.split(";")[0] };
}

/** The Redis key of a session cookie `connect.sid=s%3A<sid>.<signature>`. */
function keyOf(cookie: string): string {
  const value = decodeURIComponent(cookie.split("=")[1]!);
  const sid = value.slice(2, value.lastIndexOf("."));
  return PREFIX + createHash("sha256").update(sid).digest("hex");
}

async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let A: { url: string };
let B: { url: string };
beforeAll(async () => {
  redis = await startRedisServer();
  admin = new Redis(redis.url);
  [A, B] = await Promise.all([startApp(), startApp()]);
});
afterAll(async () => {
  for (const app of apps) app.proc.kill("SIGKILL");
  admin?.disconnect();
  await redis?.stop();
});

describe("express-session on RedisSessionStore, two processes on one Redis", () => {
  let cookie: string;

  it("a session created through one process is read through the other", async () => {
    const login = await request(A.url, "POST", "/login?user=ana");
    expect(login.status).toBe(200);
    cookie = login.cookie!;
    const me = await request(B.url, "GET", "/me", cookie);
    expect(me.body).toMatchObject({ user: "ana" });
    expect(await admin.exists(keyOf(cookie))).toBe(1);
  });

  it("steady-state requests of a known session send 0 commands to Redis (MONITOR)", async () => {
    // Warm both processes' near-caches.
    for (const app of [A, B]) expect((await request(app.url, "GET", "/me", cookie)).body).toMatchObject({ user: "ana" });
    const monitorClient = new Redis(redis.url);
    const seen: string[][] = [];
    const monitor = await monitorClient.monitor();
    monitor.on("monitor", (_t: string, args: string[]) => seen.push(args));
    await until(async () => {
      await admin.echo("start");
      return seen.some((a) => a[1] === "start");
    }, "MONITOR on");
    seen.length = 0;
    for (let i = 0; i < 20; i++) {
      for (const app of [A, B]) expect((await request(app.url, "GET", "/me", cookie)).body).toMatchObject({ user: "ana" });
    }
    await admin.echo("end");
    await until(async () => seen.some((a) => a[1] === "end"), "end marker");
    monitor.disconnect();
    monitorClient.disconnect();
    // The near-cache's subscribers ping Redis on a timer (liveness), whatever the traffic: not per request.
    const perRequest = seen.filter((a) => a[0]!.toLowerCase() !== "ping" && a[1] !== "end");
    expect(perRequest).toEqual([]);
  });

  it("req.session.destroy() in one process: the other starts a fresh session on its very next request", async () => {
    for (let round = 0; round < 5; round++) {
      const login = await request(A.url, "POST", `/login?user=bo${round}`);
      const c = login.cookie!;
      expect((await request(B.url, "GET", "/me", c)).body).toMatchObject({ user: `bo${round}` });
      expect((await request(B.url, "GET", "/me", c)).body).toMatchObject({ user: `bo${round}` }); // a local hit
      expect((await request(A.url, "POST", "/logout", c)).status).toBe(204);
      expect((await request(B.url, "GET", "/me", c)).body).toMatchObject({ user: null });
    }
  });

  it("a corrupted value in Redis gives a fresh session, not a 500 (and the value is removed)", async () => {
    const login = await request(A.url, "POST", "/login?user=cy");
    const key = keyOf(login.cookie!);
    await admin.set(key, "{corrupted", "PX", 60_000);
    const me = await request(B.url, "GET", "/me", login.cookie);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ user: null });
    expect(await admin.exists(key)).toBe(0);
  });

  it("Redis stopped: the app answers through next(err) (500), it does not hang", async () => {
    const login = await request(A.url, "POST", "/login?user=dee");
    await redis.stop();
    // Hits may be served until the near-cache finds its subscriber silent (one command timeout); then errors.
    await until(async () => (await request(B.url, "GET", "/me", login.cookie)).status === 500, "a 500 from B");
    const res = await request(A.url, "GET", "/me", login.cookie);
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: "SessionBackendUnavailableError" });
  });
});
