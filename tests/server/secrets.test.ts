/**
 * No secret leaks anywhere, over a whole run of the service on a private Redis: every log line, every
 * Redis command with its arguments (MONITOR on a separate connection: all keys and values written), the
 * keys and values left in Redis, and every HTTP response body (error bodies too) are searched for every
 * token issued, every password used (good and bad, unknown users too) and every Cookie header sent.
 * Also: the unknown-user and wrong-password logins run the same password check (counted, not timed).
 */
import Redis from "ioredis";
import request from "supertest";
import { DEFAULT_SCRYPT_PARAMS, DUMMY_PASSWORD_HASH, verifyPassword } from "../../src/auth/passwords";
import { publicHandle, sessionIdFromToken } from "../../src/auth/tokens";
import { createKeySpace } from "../../src/cache";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { makeHarness, PASSWORDS, tokenFrom, type Harness } from "./harness";

jest.setTimeout(300_000);

interface Seen {
  status: number;
  body: string;
}

describe("secrets never leave the service", () => {
  let server: RedisServerHandle;
  let h: Harness;
  let monitorConn: Redis;
  let inspect: Redis;
  /** Every command MONITOR saw: its arguments (command name first). */
  const commands: string[][] = [];
  /** Every response: status and raw body text. */
  const responses: Seen[] = [];
  const tokens: string[] = [];
  const passwords = new Set<string>();
  const cookieHeaders = new Set<string>();

  async function record<T extends { status: number; text?: string; body?: unknown }>(req: PromiseLike<T>): Promise<T> {
    const res = await req;
    responses.push({ status: res.status, body: res.text ?? (res.body === undefined ? "" : JSON.stringify(res.body)) });
    return res;
  }
  function login(username: string, password: string, ua?: string) {
    passwords.add(password);
    const req = request(h.app).post("/api/auth/login");
    if (ua !== undefined) req.set("User-Agent", ua);
    return record(req.send({ username, password }));
  }
  async function loginToken(username: string, ua?: string): Promise<string> {
    const res = await login(username, PASSWORDS[username]!, ua);
    expect(res.status).toBe(200);
    const token = tokenFrom(res);
    tokens.push(token);
    for (const c of res.headers["set-cookie"] as unknown as string[]) cookieHeaders.add(c);
    return token;
  }
  function withCookie<T extends request.Test>(req: T, token: string): T {
    const header = `bangui_session=${token}; theme=dark`;
    cookieHeaders.add(header);
    return req.set("Cookie", header);
  }
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

  /** Waits until MONITOR has seen a marker command sent after everything else. */
  async function flushMonitor(): Promise<void> {
    const marker = `marker-${Date.now()}-${Math.random()}`;
    await inspect.echo(marker);
    const deadline = Date.now() + 60_000; // a hang guard, not an expectation
    while (!commands.some((c) => c.includes(marker))) {
      if (Date.now() > deadline) throw new Error("MONITOR did not see the marker");
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** The secrets, each with a label for the failure message. */
  function secrets(): Array<[string, string]> {
    return [
      ...tokens.map((t, i) => [`token #${i}`, t] as [string, string]),
      ...[...passwords].map((p) => [`password ${JSON.stringify(p)}`, p] as [string, string]),
      ...[...cookieHeaders].map((c) => [`cookie header ${JSON.stringify(c)}`, c] as [string, string]),
    ];
  }
  /** The labels of the secrets found in `texts` (empty: none). */
  function leaks(where: string, texts: readonly string[]): string[] {
    const found: string[] = [];
    for (const [label, secret] of secrets()) {
      texts.forEach((text, i) => {
        if (text.includes(secret)) found.push(`${label} in ${where} #${i}: ${text.slice(0, 300)}`);
      });
    }
    return found;
  }

  beforeAll(async () => {
    server = await startRedisServer();
    monitorConn = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await monitorConn.connect();
    const monitor = await monitorConn.monitor();
    monitor.on("monitor", (_time: string, args: string[]) => commands.push(args.map(String)));
    monitor.on("error", () => undefined);
    inspect = new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    inspect.on("error", () => undefined);
    h = await makeHarness("redis", server.url, {
      config: { loginMaxFailures: 3, loginWindowSeconds: 120, redisCommandTimeoutMs: 300 },
    });
  });
  afterAll(async () => {
    h?.redis?.disconnect(); // Redis is gone: no quit to wait for, no reconnect timer left behind
    await h?.close();
    monitorConn?.disconnect();
    inspect?.disconnect();
    await server?.stop();
  });

  test("a whole run, outage included: no token, password or cookie in logs, Redis commands, Redis data or bodies", async () => {
    // Logins: good, wrong password, unknown user.
    const a1 = await loginToken("alice");
    const a2 = await loginToken("alice", "agent-two");
    const a3 = await loginToken("alice");
    const b1 = await loginToken("bob");
    expect((await login("alice", "alice-wrong-guess-7")).status).toBe(401);
    expect((await login("mallory", "mallory-guess-42")).status).toBe(401);
    expect((await login("alice", PASSWORDS.bob!)).status).toBe(401); // someone else's password

    // Session checks by cookie and by bearer; a bad token.
    expect((await record(withCookie(request(h.app).get("/api/auth/session"), a1))).status).toBe(200);
    expect((await record(request(h.app).get("/api/auth/session").set(bearer(a2)))).status).toBe(200);
    expect((await record(request(h.app).get("/api/auth/session").set(bearer("A".repeat(43))))).status).toBe(401);

    // Sessions list, revoke (another session, then a junk handle: 404).
    const list = await record(request(h.app).get("/api/auth/sessions").set(bearer(a1)));
    expect(list.status).toBe(200);
    expect(list.body.sessions).toHaveLength(3);
    const revoke = await record(request(h.app).delete(`/api/auth/sessions/${publicHandle(sessionIdFromToken(a2))}`).set(bearer(a1)));
    expect(revoke.status).toBe(204);
    expect((await record(request(h.app).delete(`/api/auth/sessions/${"f".repeat(32)}`).set(bearer(a1)))).status).toBe(404);

    // Logout by cookie, logout-all by bearer.
    expect((await record(withCookie(request(h.app).post("/api/auth/logout"), a1))).status).toBe(204);
    expect((await record(request(h.app).post("/api/auth/logout-all").set(bearer(a3)))).status).toBe(204);
    expect((await record(request(h.app).get("/api/auth/session").set(bearer(a3)))).status).toBe(401);

    // Throttled: three wrong passwords of bob, then even the right one is 429.
    for (const pw of ["bob-wrong-1", "bob-wrong-2", "bob-wrong-3"]) expect((await login("bob", pw)).status).toBe(401);
    const throttled = await login("bob", PASSWORDS.bob!);
    expect(throttled.status).toBe(429);

    // A live session for the end state, then hostile-ish input: a password in the username field.
    const a4 = await loginToken("alice");
    expect((await login("alice-password-in-username-field", "x-password-9")).status).toBe(401);
    passwords.add("alice-password-in-username-field");

    // The Redis data at the end (before the outage): SCAN every key, read every value.
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await inspect.scan(cursor, "COUNT", 100);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");
    const values: string[] = [];
    for (const key of keys) {
      const type = await inspect.type(key);
      if (type === "string") values.push(String(await inspect.get(key)));
      else if (type === "set") values.push(...(await inspect.smembers(key)));
      else if (type === "hash") values.push(...Object.entries(await inspect.hgetall(key)).flat());
      else if (type === "zset") values.push(...(await inspect.zrange(key, "0", "-1")));
      else if (type === "list") values.push(...(await inspect.lrange(key, 0, -1)));
      else throw new Error(`unexpected key type ${type} for ${key}`);
    }
    const space = createKeySpace(h.keyPrefix);
    expect(keys).toContain(space.session(sessionIdFromToken(a4)));
    expect(keys).toContain(space.session(sessionIdFromToken(b1)));
    expect(keys.some((k) => k.startsWith(space.throttlePrefix))).toBe(true);
    expect(values.some((v) => v.includes('"username":"alice"'))).toBe(true);
    expect(leaks("redis key", keys)).toEqual([]);
    expect(leaks("redis value", values)).toEqual([]);

    // Everything MONITOR saw until now: keys and values of every write.
    await flushMonitor();
    expect(commands.some((c) => c[0]?.toLowerCase() === "set" && c[1] === space.session(sessionIdFromToken(a4)))).toBe(true);
    expect(commands.some((c) => c.some((arg) => arg.includes('"username":"bob"')))).toBe(true);

    // Outage: Redis stopped; every request that needs Redis answers 503, login with a password too.
    await server.stop();
    const unavailable = { error: "session_backend_unavailable", message: expect.any(String) };
    const outage = [
      () => login("alice", PASSWORDS.alice!),
      () => login("alice", "alice-wrong-during-outage"),
      () => login("mallory", "mallory-during-outage"),
      () => record(withCookie(request(h.app).get("/api/auth/session"), a4)),
      () => record(request(h.app).get("/api/auth/session").set(bearer(a4))),
      () => record(request(h.app).get("/api/auth/sessions").set(bearer(a4))),
      () => record(request(h.app).delete(`/api/auth/sessions/${publicHandle(sessionIdFromToken(b1))}`).set(bearer(a4))),
      () => record(withCookie(request(h.app).post("/api/auth/logout"), a4)),
      () => record(request(h.app).post("/api/auth/logout-all").set(bearer(a4))),
    ];
    for (const call of outage) {
      const res = await call();
      expect(res.status).toBe(503);
      expect(res.body).toEqual(unavailable);
      expect(res.headers["set-cookie"]).toBeUndefined();
    }

    // The net is real: logs of every kind, Redis commands, bodies of every status were captured.
    expect(tokens).toHaveLength(5);
    expect(passwords.size).toBe(11);
    expect(h.logs.length).toBeGreaterThan(25);
    const lines = h.logs.map((l) => JSON.parse(l) as { level: number; msg?: string });
    expect(lines.some((l) => l.msg === "login")).toBe(true);
    expect(lines.some((l) => l.msg === "session backend unavailable")).toBe(true);
    expect(commands.length).toBeGreaterThan(30);
    expect(new Set(responses.map((r) => r.status))).toEqual(new Set([200, 204, 401, 404, 429, 503]));
    expect(responses.filter((r) => r.body !== "").length).toBeGreaterThan(15);

    expect(leaks("log line", h.logs)).toEqual([]);
    expect(leaks("redis command", commands.map((c) => c.join(" ")))).toEqual([]);
    expect(leaks("redis command argument", commands.flat())).toEqual([]);
    expect(leaks("response body", responses.map((r) => r.body))).toEqual([]);
    // Not even the word: no request header is ever logged.
    expect(h.logs.join("").toLowerCase()).not.toContain("cookie");
    expect(h.logs.join("").toLowerCase()).not.toContain("bearer");
  });
});

describe("the unknown-user and wrong-password logins run the same password check", () => {
  let server: RedisServerHandle;
  let h: Harness;
  const calls: Array<{ password: string; hash: string }> = [];

  beforeAll(async () => {
    server = await startRedisServer();
    h = await makeHarness("redis", server.url, {
      config: { loginMaxFailures: 2, redisCommandTimeoutMs: 300 },
      verifyPassword: (password, hash) => {
        calls.push({ password, hash });
        return verifyPassword(password, hash);
      },
    });
  });
  afterAll(async () => {
    h?.redis?.disconnect(); // Redis is gone: no quit to wait for, no reconnect timer left behind
    await h?.close();
    await server?.stop();
  });

  const login = (username: string, password: string) => request(h.app).post("/api/auth/login").send({ username, password });
  async function callsOf(fn: () => Promise<unknown>): Promise<Array<{ password: string; hash: string }>> {
    const from = calls.length;
    await fn();
    return calls.slice(from);
  }

  test("one scrypt check each (the dummy hash for the unknown user, at the default cost), none once throttled or during an outage", async () => {
    const aliceHash = h.users.get("alice")!.passwordHash;
    const unknown = await callsOf(async () => expect((await login("mallory", "guess-1")).status).toBe(401));
    const wrong = await callsOf(async () => expect((await login("alice", "guess-1")).status).toBe(401));
    const right = await callsOf(async () => expect((await login("bob", PASSWORDS.bob!)).status).toBe(200));
    expect(unknown).toEqual([{ password: "guess-1", hash: DUMMY_PASSWORD_HASH }]);
    expect(wrong).toEqual([{ password: "guess-1", hash: aliceHash }]);
    expect(right).toHaveLength(1);
    expect(unknown.length).toBe(wrong.length);
    // The dummy hash costs what a real hash of the default parameters costs.
    const [, N, r, p] = DUMMY_PASSWORD_HASH.split("$").map(String);
    expect({ N: Number(N), r: Number(r), p: Number(p) }).toEqual({ ...DEFAULT_SCRYPT_PARAMS });

    // Throttled (2 failures per username+IP): both paths stop before scrypt, equally.
    await login("mallory", "guess-2");
    await login("alice", "guess-2");
    const unknownThrottled = await callsOf(async () => expect((await login("mallory", "guess-3")).status).toBe(429));
    const wrongThrottled = await callsOf(async () => expect((await login("alice", "guess-3")).status).toBe(429));
    expect(unknownThrottled).toEqual([]);
    expect(wrongThrottled).toEqual([]);

    // Outage: the throttle store fails closed before any password is checked, for both paths.
    await server.stop();
    const unknownDown = await callsOf(async () => expect((await login("trudy", "guess-4")).status).toBe(503));
    const wrongDown = await callsOf(async () => expect((await login("bob", "guess-4")).status).toBe(503));
    expect(unknownDown).toEqual([]);
    expect(wrongDown).toEqual([]);
  });
});
