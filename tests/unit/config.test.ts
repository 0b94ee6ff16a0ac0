import express from "express";
import { loadConfig } from "../../src/config";
import { ConfigError } from "../../src/errors";

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected loadConfig to throw");
}

describe("loadConfig defaults", () => {
  it("an empty environment gives the documented defaults", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      redis: undefined,
      workers: 1,
      host: "127.0.0.1",
      port: 8080,
      sessionTtlSeconds: 3600,
      sessionIdleSeconds: undefined,
      keyPrefix: "bangui:",
      memoryMaxSessions: 100_000,
      nearCache: true,
      nearCacheFreshness: "strict",
      redisCommandTimeoutMs: 500,
      redisConnectTimeoutMs: 2000,
      redisWaitReplicas: "auto",
      redisWaitTimeoutMs: 500,
      logLevel: "info",
      cookieSecure: false,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("empty strings count as unset", () => {
    expect(loadConfig({ BANGUI_PORT: "", BANGUI_REDIS_URL: "" })).toMatchObject({ port: 8080, redis: undefined });
  });

  it("cookies are Secure by default in production", () => {
    expect(loadConfig({ NODE_ENV: "production" }).cookieSecure).toBe(true);
    expect(loadConfig({ NODE_ENV: "production", BANGUI_COOKIE_SECURE: "false" }).cookieSecure).toBe(false);
  });
});

describe("loadConfig valid values", () => {
  it.each([
    ["BANGUI_PORT", "0", "port", 0],
    ["BANGUI_WORKERS", "1", "workers", 1],
    ["BANGUI_SESSION_TTL_SECONDS", " 60 ", "sessionTtlSeconds", 60],
    ["BANGUI_MEMORY_MAX_SESSIONS", "5", "memoryMaxSessions", 5],
    ["BANGUI_NEAR_CACHE", "off", "nearCache", false],
    ["BANGUI_NEAR_CACHE", "YES", "nearCache", true],
    ["BANGUI_NEAR_CACHE_FRESHNESS", "Bounded", "nearCacheFreshness", "bounded"],
    ["BANGUI_REDIS_WAIT_REPLICAS", "0", "redisWaitReplicas", 0],
    ["BANGUI_REDIS_WAIT_REPLICAS", "2", "redisWaitReplicas", 2],
    ["BANGUI_REDIS_WAIT_REPLICAS", "auto", "redisWaitReplicas", "auto"],
    ["BANGUI_KEY_PREFIX", "{app}:", "keyPrefix", "{app}:"],
    ["BANGUI_LOG_LEVEL", "debug", "logLevel", "debug"],
    ["BANGUI_LOGIN_MAX_PER_IP", "5", "loginMaxPerIp", 5],
    ["BANGUI_SESSION_BACKEND", "ipc", "sessionBackend", "ipc"],
    ["BANGUI_SESSION_BACKEND", "Memory", "sessionBackend", "memory"],
    ["BANGUI_SESSIONS_FILE", "./data/sessions.json", "sessionsFile", "./data/sessions.json"],
    ["BANGUI_IPC_COMMAND_TIMEOUT_MS", "250", "ipcCommandTimeoutMs", 250],
  ])("%s=%j gives %s=%j", (name, value, field, expected) => {
    expect((loadConfig({ [name]: value }) as unknown as Record<string, unknown>)[field]).toEqual(expected);
  });

  it.each([
    ["true", true],
    ["FALSE", false],
    ["0", 0],
    ["2", 2],
    ["loopback", ["loopback"]],
    [" loopback , 10.0.0.0/8,::1 ", ["loopback", "10.0.0.0/8", "::1"]],
    ["uniquelocal,linklocal", ["uniquelocal", "linklocal"]],
    ["10.0.0.1/255.255.255.0", ["10.0.0.1/255.255.255.0"]],
    ["fd00::/8", ["fd00::/8"]],
  ])("BANGUI_TRUST_PROXY=%j gives %j, which Express accepts", (value, expected) => {
    const { trustProxy } = loadConfig({ BANGUI_TRUST_PROXY: value });
    expect(trustProxy).toEqual(expected);
    expect(() => express().set("trust proxy", trustProxy)).not.toThrow();
  });

  it("BANGUI_WORKERS > 1 is accepted with a Redis URL", () => {
    expect(loadConfig({ BANGUI_WORKERS: "4", BANGUI_REDIS_URL: "redis://127.0.0.1:6390" }).workers).toBe(4);
  });

  it.each([
    [{}, "memory"],
    [{ BANGUI_WORKERS: "4" }, "ipc"],
    [{ BANGUI_WORKERS: "4", BANGUI_REDIS_URL: "redis://127.0.0.1:6390" }, "redis"],
    [{ BANGUI_REDIS_URL: "redis://127.0.0.1:6390" }, "redis"],
    [{ BANGUI_SESSION_BACKEND: "ipc" }, "ipc"],
    [{ BANGUI_SESSION_BACKEND: "memory", BANGUI_REDIS_URL: "redis://127.0.0.1:6390" }, "memory"],
  ])("BANGUI_SESSION_BACKEND auto and explicit: %j runs on %s", (env, backend) => {
    expect(loadConfig(env as Record<string, string>).sessionBackend).toBe(backend);
  });
});

describe("loadConfig rejects bad values, naming the variable", () => {
  it.each([
    ["BANGUI_PORT", "http"],
    ["BANGUI_PORT", "65536"],
    ["BANGUI_PORT", "-1"],
    ["BANGUI_PORT", "80.5"],
    ["BANGUI_WORKERS", "0"],
    ["BANGUI_WORKERS", "257"],
    ["BANGUI_HOST", "   "],
    ["BANGUI_SESSION_TTL_SECONDS", "0"],
    ["BANGUI_SESSION_TTL_SECONDS", "1h"],
    ["BANGUI_SESSION_IDLE_SECONDS", "0"],
    ["BANGUI_MAX_SESSIONS_PER_USER", "0"],
    ["BANGUI_COOKIE_SECURE", "maybe"],
    ["BANGUI_KEY_PREFIX", "has space"],
    ["BANGUI_KEY_PREFIX", "x".repeat(65)],
    ["BANGUI_MEMORY_MAX_SESSIONS", "0"],
    ["BANGUI_NEAR_CACHE", "2"],
    ["BANGUI_NEAR_CACHE_MAX_AGE_MS", "0"],
    ["BANGUI_NEAR_CACHE_MAX_ENTRIES", "0"],
    ["BANGUI_NEAR_CACHE_FRESHNESS", "eventual"],
    ["BANGUI_LOGIN_MAX_FAILURES", "0"],
    ["BANGUI_LOGIN_WINDOW_SECONDS", "0"],
    ["BANGUI_REDIS_COMMAND_TIMEOUT_MS", "5"],
    ["BANGUI_REDIS_CONNECT_TIMEOUT_MS", "60001"],
    ["BANGUI_REDIS_WAIT_REPLICAS", "all"],
    ["BANGUI_REDIS_WAIT_REPLICAS", "-1"],
    ["BANGUI_REDIS_WAIT_TIMEOUT_MS", "0"],
    ["BANGUI_BODY_LIMIT_BYTES", "10"],
    ["BANGUI_SHUTDOWN_TIMEOUT_MS", "50"],
    ["BANGUI_LOG_LEVEL", "verbose"],
    ["BANGUI_LOGIN_MAX_PER_IP", "0"],
    ["BANGUI_SESSION_BACKEND", "postgres"],
    ["BANGUI_IPC_COMMAND_TIMEOUT_MS", "5"],
    ["BANGUI_REDIS_URL", "http://127.0.0.1:6379"],
    ["BANGUI_REDIS_URL", "127.0.0.1:6379"],
    ["BANGUI_REDIS_URL", "redis://a,b:6379"],
    ["BANGUI_REDIS_URL", "redis://host:99999"],
    ["BANGUI_REDIS_URL", "redis://host/notadb"],
    ["BANGUI_REDIS_URL", "redis+sentinel://h1:26379"],
    ["BANGUI_REDIS_URL", "redis+cluster://h1:7000/1"],
    // Each of these makes Express's `app.set("trust proxy", ...)` throw (or, "yes", trust nothing by accident).
    ["BANGUI_TRUST_PROXY", "loopbak"],
    ["BANGUI_TRUST_PROXY", "localhost"],
    ["BANGUI_TRUST_PROXY", "yes"],
    ["BANGUI_TRUST_PROXY", "*"],
    ["BANGUI_TRUST_PROXY", "-1"],
    ["BANGUI_TRUST_PROXY", "1001"],
    ["BANGUI_TRUST_PROXY", "1.5"],
    ["BANGUI_TRUST_PROXY", "10.0.0.256"],
    ["BANGUI_TRUST_PROXY", "10.0.0.0/33"],
    ["BANGUI_TRUST_PROXY", "10.0.0.1/255.0.255.0"],
    ["BANGUI_TRUST_PROXY", "fe80::/129"],
    ["BANGUI_TRUST_PROXY", "loopback,"],
    ["BANGUI_TRUST_PROXY", "loopback;10.0.0.0/8"],
    ["BANGUI_TRUST_PROXY", "loopback, 10.0.0.0/8, nginx"],
  ])("%s=%j", (name, value) => {
    const err = configError({ [name]: value });
    expect(err.message).toContain(name);
    expect(err.issues.some((i) => i.startsWith(`${name}:`))).toBe(true);
  });

  it("BANGUI_SESSION_BACKEND=memory with BANGUI_WORKERS > 1 is refused, naming what to set", () => {
    const err = configError({ BANGUI_WORKERS: "2", BANGUI_SESSION_BACKEND: "memory" });
    expect(err.issues.some((i) => i.startsWith("BANGUI_SESSION_BACKEND:"))).toBe(true);
    expect(err.message).toContain("BANGUI_WORKERS");
    expect(err.message).toContain("BANGUI_REDIS_URL");
  });

  it("BANGUI_SESSION_BACKEND=redis without BANGUI_REDIS_URL is refused", () => {
    const err = configError({ BANGUI_SESSION_BACKEND: "redis" });
    expect(err.issues.some((i) => i.startsWith("BANGUI_SESSION_BACKEND:"))).toBe(true);
    expect(err.message).toContain("BANGUI_REDIS_URL");
  });

  it("BANGUI_SESSIONS_FILE with the Redis backend is refused", () => {
    const err = configError({ BANGUI_SESSIONS_FILE: "/tmp/s.json", BANGUI_REDIS_URL: "redis://127.0.0.1:6390" });
    expect(err.issues.some((i) => i.startsWith("BANGUI_SESSIONS_FILE:"))).toBe(true);
  });

  it("an idle timeout longer than the TTL is refused", () => {
    const err = configError({ BANGUI_SESSION_TTL_SECONDS: "60", BANGUI_SESSION_IDLE_SECONDS: "61" });
    expect(err.message).toContain("BANGUI_SESSION_IDLE_SECONDS");
  });

  it("reports every bad variable at once", () => {
    const err = configError({ BANGUI_PORT: "x", BANGUI_LOG_LEVEL: "y" });
    expect(err.issues).toHaveLength(2);
  });

  it.each([
    "redis://admin:s3cr3t-PW@host:notaport",
    "redis://admin:s3cr3t-PW@host/notadb",
    "redis://admin:s3cr3t-PW@bad host:6379",
    "ftp://admin:s3cr3t-PW@host:6379",
    "redis+sentinel://admin:s3cr3t-PW@h1:26379",
    "redis://admin:s3cr3t%2DPW@a,b:6379",
  ])("no credential from the URL appears in the error (%#)", (url) => {
    const err = configError({ BANGUI_REDIS_URL: url });
    expect(err.message).toContain("BANGUI_REDIS_URL");
    const text = `${err.message}\n${err.issues.join("\n")}\n${String(err.cause ?? "")}`;
    expect(text).not.toContain("s3cr3t");
    expect(text).not.toContain("admin");
  });
});
