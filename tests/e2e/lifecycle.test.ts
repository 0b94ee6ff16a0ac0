/**
 * The process life of the built service (in-memory backend, no Redis needed): configuration refusals,
 * the first start that creates the admin user, session expiry, a SIGTERM that lets a request in flight
 * finish, and a primary that gives up when its workers keep dying.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { Agent } from "node:http";
import { join } from "node:path";
import { loadConfig } from "../../src/config";
import {
  http,
  login,
  MAIN_JS,
  ROOT,
  removeTempDir,
  runNode,
  sessionCookie,
  startService,
  stopAll,
  tempDir,
  type ServiceHandle,
} from "../helpers/service";

jest.setTimeout(300_000);

let dir: string;
const started: ServiceHandle[] = [];

beforeAll(() => {
  dir = tempDir("lifecycle");
});

afterAll(async () => {
  await stopAll(started);
  if (dir) removeTempDir(dir);
});

test(".env.example lists every variable of the config schema, and its uncommented defaults are the real ones", () => {
  const schemaVars = new Set(readFileSync(join(ROOT, "src", "config.ts"), "utf8").match(/\bBANGUI_[A-Z_]+(?=:)/g));
  const example = readFileSync(join(ROOT, ".env.example"), "utf8");
  const documented = new Map<string, string>();
  for (const m of example.matchAll(/^# (BANGUI_[A-Z_]+)=(.*)$/gm)) documented.set(m[1]!, m[2]!);
  expect([...schemaVars].filter((v) => !documented.has(v))).toEqual([]);
  expect([...documented.keys()].filter((v) => !schemaVars.has(v))).toEqual([]);
  const defaults = loadConfig({});
  for (const [name, value] of documented) {
    if (value === "") continue; // unset by default
    expect({ name, config: loadConfig({ [name]: value }) }).toEqual({ name, config: defaults });
  }
});

test("the memory backend with several workers refuses to start: non-zero exit, stderr names BANGUI_SESSION_BACKEND and BANGUI_REDIS_URL", async () => {
  const usersFile = join(dir, "refused-users.json");
  const r = await runNode(MAIN_JS, [], {
    env: { BANGUI_SESSION_BACKEND: "memory", BANGUI_WORKERS: "3", BANGUI_USERS_FILE: usersFile, BANGUI_PORT: "0" },
  });
  expect(r.stderr).toContain("BANGUI_SESSION_BACKEND");
  expect(r.code).not.toBe(0);
  expect(r.code).not.toBeNull();
  expect(r.stderr).toContain("BANGUI_REDIS_URL");
  expect(r.stderr).toContain("BANGUI_WORKERS");
  expect(r.stdout).not.toContain('"listening"');
  expect(existsSync(usersFile)).toBe(false);
});

test("an invalid value stops the start with exit code 1 and a message naming the variable", async () => {
  const r = await runNode(MAIN_JS, [], {
    env: { BANGUI_SESSION_TTL_SECONDS: "-5", BANGUI_USERS_FILE: join(dir, "bad-users.json"), BANGUI_PORT: "0" },
  });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("BANGUI_SESSION_TTL_SECONDS");
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
});

test("a users file that does not parse stops the start with exit code 1 before any worker runs", async () => {
  const usersFile = join(dir, "corrupt-users.json");
  writeFileSync(usersFile, "{ not json");
  const r = await runNode(MAIN_JS, [], { env: { BANGUI_USERS_FILE: usersFile, BANGUI_PORT: "0" } });
  expect(r.code).toBe(1);
  expect(r.stdout).toContain("the service could not start");
  expect(r.stdout).not.toContain("worker listening");
});

test("the first start creates the admin user and prints its password once, never in a log line", async () => {
  const usersFile = join(dir, "first-users.json");
  const first = await startService({ env: { BANGUI_USERS_FILE: usersFile, BANGUI_LOG_LEVEL: "trace" } });
  started.push(first);
  const printed = first.stdout().split("\n").filter((l) => l.includes("password:"));
  expect(printed).toHaveLength(1);
  const match = /^Created users file .* with user admin, password: (\S+) \(shown once\)$/.exec(printed[0]!);
  expect(match).not.toBeNull();
  const password = match![1]!;
  expect(password.length).toBeGreaterThanOrEqual(16);

  const token = await login(first.url, "admin", password);
  expect((await http(first.url, "GET", "/api/auth/session", { cookie: token })).status).toBe(200);
  expect((await http(first.url, "POST", "/api/auth/login", { body: { username: "admin", password: "wrong-one" } })).status).toBe(401);
  await first.stop();

  const second = await startService({ env: { BANGUI_USERS_FILE: usersFile } });
  started.push(second);
  await second.stop();
  for (const service of [first, second]) {
    const everything = service.stdout() + service.stderr();
    const occurrences = everything.split(password).length - 1;
    expect(occurrences).toBe(service === first ? 1 : 0);
    // Neither the password nor the token in any JSON log line (trace level logs every request).
    for (const line of service.logs()) {
      const text = JSON.stringify(line);
      expect(text).not.toContain(password);
      expect(text).not.toContain(token);
    }
  }
  expect(second.stdout()).not.toContain("Created users file");
});

test("a session ends at its absolute lifetime (BANGUI_SESSION_TTL_SECONDS=2): cookie Max-Age 2, then 401", async () => {
  const usersFile = join(dir, "ttl-users.json");
  const s = await startService({ env: { BANGUI_USERS_FILE: usersFile, BANGUI_SESSION_TTL_SECONDS: "2" } });
  started.push(s);
  const password = /password: (\S+) \(shown once\)/.exec(s.stdout())![1]!;
  const res = await http(s.url, "POST", "/api/auth/login", { body: { username: "admin", password } });
  expect(res.status).toBe(200);
  const cookie = sessionCookie(res)!;
  expect(cookie.attributes.get("max-age")).toBe("2");
  expect(Date.parse(res.json.expiresAt) - Date.now()).toBeLessThanOrEqual(2000);
  const before = await http(s.url, "GET", "/api/auth/session", { token: cookie.value });
  // Before expiresAt the session is valid (if the machine was so slow that it already passed, that check is moot).
  if (Date.now() < Date.parse(res.json.expiresAt)) expect(before.status).toBe(200);
  // Past the expiresAt the service announced (not a guessed 2.3 s): 401.
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(res.json.expiresAt) - Date.now()) + 10));
  expect((await http(s.url, "GET", "/api/auth/session", { token: cookie.value })).status).toBe(401);
});

/** Sends the head of a login request with `Expect: 100-continue` and resolves once the server answered 100. */
function startSlowLogin(port: number, body: string): Promise<{ socket: Socket; response: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    let continued = false;
    let onEnd!: (text: string) => void;
    const response = new Promise<string>((res) => (onEnd = res));
    socket.setEncoding("utf8");
    socket.on("error", reject);
    socket.on("data", (chunk: string) => {
      data += chunk;
      if (!continued && data.includes("100 Continue")) {
        continued = true;
        data = "";
        resolve({ socket, response });
      }
    });
    socket.on("close", () => onEnd(data));
    socket.write(
      "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
        `Content-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`,
    );
  });
}

test("SIGTERM lets a request in flight finish, closes idle keep-alive connections, and exits 0", async () => {
  const usersFile = join(dir, "drain-users.json");
  const s = await startService({ env: { BANGUI_USERS_FILE: usersFile } });
  started.push(s);
  const password = /password: (\S+) \(shown once\)/.exec(s.stdout())![1]!;
  // An idle keep-alive connection must not hold the shutdown up.
  const agent = new Agent({ keepAlive: true });
  expect((await http(s.url, "GET", "/healthz", { agent })).status).toBe(200);

  const body = JSON.stringify({ username: "admin", password });
  const { socket, response } = await startSlowLogin(s.port, body);
  s.terminate();
  const draining = await s.waitForLog((l) => l.msg === "draining");
  expect(draining.inFlight).toBe(1);

  socket.write(body); // not end(): a half-closed request is aborted by node:http, drain or not
  const answer = await response;
  expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  expect(answer.toLowerCase()).toContain("connection: close");
  expect(answer).toContain("bangui_session=");

  const status = await s.stop();
  expect(status).toEqual({ code: 0, signal: null });
  const messages = s.logs().map((l) => l.msg);
  expect(messages).toContain("worker drained");
  expect(messages).not.toContain("drain timeout: open connections destroyed");
  expect(messages).not.toContain("killing workers that did not stop");
  agent.destroy();
});

test("workers that keep dying make the primary give up loudly with exit code 1", async () => {
  // The port is taken, so every worker fails to listen.
  const blocker: Server = createServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
  const port = (blocker.address() as { port: number }).port;
  try {
    const r = await runNode(MAIN_JS, [], {
      env: { BANGUI_USERS_FILE: join(dir, "loop-users.json"), BANGUI_PORT: String(port) },
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(1);
    expect(r.signal).toBeNull();
    const lines = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(lines.filter((l) => l.msg === "worker died; restarting it").length).toBe(5);
    const fatal = lines.find((l) => l.msg.startsWith("workers keep dying"));
    expect(fatal?.level).toBe(60);
  } finally {
    await new Promise((r) => blocker.close(r));
  }
});

test("neither a request that never finishes nor a frozen worker holds the shutdown past BANGUI_SHUTDOWN_TIMEOUT_MS", async () => {
  const env = { BANGUI_SHUTDOWN_TIMEOUT_MS: "1000" };
  const [slow, frozen] = await Promise.all([
    startService({ env: { ...env, BANGUI_USERS_FILE: join(dir, "slow-users.json") } }),
    startService({ env: { ...env, BANGUI_USERS_FILE: join(dir, "frozen-users.json") } }),
  ]);
  started.push(slow, frozen);

  // A login whose body never comes: the worker destroys the connection at its drain deadline.
  const { socket, response } = await startSlowLogin(slow.port, '{"username":"admin","password":"never sent"}');
  // A worker that cannot react at all: the primary SIGKILLs it at the deadline.
  const [frozenWorker] = frozen.workerPids();
  process.kill(frozenWorker!, "SIGSTOP");

  let statuses;
  try {
    statuses = await Promise.all([slow.stop(5000), frozen.stop(5000)]);
  } finally {
    // Never leave a stopped orphan behind, whatever happened above.
    try {
      process.kill(frozenWorker!, "SIGKILL");
    } catch {
      // already gone (the primary killed it)
    }
  }
  const [slowStatus, frozenStatus] = statuses;
  expect(slowStatus).toEqual({ code: 0, signal: null });
  expect(frozenStatus).toEqual({ code: 0, signal: null });
  expect(await response).toBe(""); // closed without an answer: it had not sent its body
  socket.destroy();
  expect(slow.logs().find((l) => l.msg === "drain timeout: open connections destroyed")?.abandoned).toBe(1);
  expect(frozen.logs().find((l) => l.msg === "killing workers that did not stop")?.workerPids).toEqual([frozenWorker]);
});
