/** RedisSessionStore under @fastify/session (it takes express-session-compatible stores), a real process on a private Redis. */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import Redis from "ioredis";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

jest.setTimeout(120_000);

let server: RedisServerHandle;
let admin: Redis;
let app: ChildProcess;
let url: string;

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
  app = spawn(process.execPath, [join(__dirname, "fixtures/fastify-app.js")], {
    env: { ...process.env, REDIS_URL: server.url, PREFIX: "fst:" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    app.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line !== undefined) resolve((JSON.parse(line) as { port: number }).port);
    });
    app.once("exit", (code) => reject(new Error(`fastify app exited with ${code}`)));
  });
  url = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  app?.kill("SIGKILL");
  admin?.disconnect();
  await server?.stop();
});

async function call(method: string, path: string, cookie?: string) {
  const res = await fetch(url + path, { method, headers: cookie ? { cookie } : {}, signal: AbortSignal.timeout(30_000) });
  return { body: (await res.json()) as Record<string, unknown>, cookie: res.headers.get("set-cookie")?.split(";")[0] };
}

it("@fastify/session keeps its session in RedisSessionStore under a hashed key, and destroy ends it", async () => {
  const login = await call("POST", "/login");
  expect(login.cookie).toMatch(/^sessionId=/);
  const keys = await admin.keys("fst:*");
  expect(keys).toHaveLength(1);
  expect(keys[0]).toMatch(/^fst:[0-9a-f]{64}$/);
  expect((await call("GET", "/me", login.cookie)).body).toEqual({ user: "fay" });
  await call("POST", "/logout", login.cookie);
  expect(await admin.keys("fst:*")).toEqual([]);
  expect((await call("GET", "/me", login.cookie)).body).toEqual({ user: null });
});
