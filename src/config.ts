/**
 * One zod schema for every BANGUI_* variable. `loadConfig(env)` is pure: it reads only the object it is
 * given and returns a frozen, typed Config, or throws a ConfigError naming each variable and problem.
 */
import { z } from "zod";
import type { MetricsRegistry, SessionCacheOptions } from "./cache";
import { ConfigError } from "./errors";
import type { Logger } from "./logger";
import { parseRedisUrl, type RedisTarget } from "./redis-url";

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["true", "false", "1", "0", "yes", "no", "on", "off"], { message: "must be true or false" }))
  .transform((v) => v === "true" || v === "1" || v === "yes" || v === "on");

const optional = <T extends z.ZodTypeAny>(schema: T) =>
  z.preprocess((v) => (v === "" ? undefined : v), schema.optional());

const redisUrl = z.string().transform((raw, ctx): RedisTarget => {
  try {
    return parseRedisUrl(raw.trim());
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const schema = z
  .object({
    NODE_ENV: optional(z.string()),
    BANGUI_REDIS_URL: optional(redisUrl),
    BANGUI_WORKERS: optional(int(1, 256)).default(1),
    BANGUI_HOST: optional(z.string().trim().min(1)).default("127.0.0.1"),
    BANGUI_PORT: optional(int(0, 65535)).default(8080),
    BANGUI_SESSION_TTL_SECONDS: optional(int(1, 31_536_000)).default(3600),
    BANGUI_SESSION_IDLE_SECONDS: optional(int(1, 31_536_000)),
    BANGUI_MAX_SESSIONS_PER_USER: optional(int(1, 10_000)),
    BANGUI_USERS_FILE: optional(z.string().trim().min(1)).default("./data/users.json"),
    BANGUI_COOKIE_SECURE: optional(bool),
    BANGUI_KEY_PREFIX: optional(
      z.string().regex(/^[A-Za-z0-9:_.{}-]{1,64}$/, "must be 1-64 characters of A-Z a-z 0-9 : _ . - { }"),
    ).default("bangui:"),
    BANGUI_MEMORY_MAX_SESSIONS: optional(int(1, 100_000_000)).default(100_000),
    BANGUI_NEAR_CACHE: optional(bool),
    BANGUI_NEAR_CACHE_MAX_AGE_MS: optional(int(1, 86_400_000)).default(60_000),
    BANGUI_NEAR_CACHE_MAX_ENTRIES: optional(int(1, 100_000_000)).default(100_000),
    BANGUI_LOGIN_MAX_FAILURES: optional(int(1, 1_000_000)).default(10),
    BANGUI_LOGIN_WINDOW_SECONDS: optional(int(1, 31_536_000)).default(900),
    BANGUI_REDIS_COMMAND_TIMEOUT_MS: optional(int(10, 60_000)).default(500),
    BANGUI_REDIS_CONNECT_TIMEOUT_MS: optional(int(10, 60_000)).default(2000),
    BANGUI_REDIS_WAIT_REPLICAS: optional(
      z.union([z.literal("auto"), int(0, 100)], { message: 'must be "auto" or a number of replicas (0 turns it off)' }),
    ).default("auto"),
    BANGUI_REDIS_WAIT_TIMEOUT_MS: optional(int(1, 60_000)).default(500),
    BANGUI_TRUST_PROXY: optional(z.string().trim()),
    BANGUI_BODY_LIMIT_BYTES: optional(int(64, 10_485_760)).default(16_384),
    BANGUI_SHUTDOWN_TIMEOUT_MS: optional(int(100, 60_000)).default(8000),
    BANGUI_LOG_LEVEL: optional(z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(", ")}` })).default("info"),
  })
  .superRefine((c, ctx) => {
    if (c.BANGUI_WORKERS > 1 && c.BANGUI_REDIS_URL === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["BANGUI_WORKERS"],
        message:
          "BANGUI_WORKERS > 1 needs BANGUI_REDIS_URL: the in-memory session cache is per process, so a login or logout " +
          "on one worker would not be seen by the others. Set BANGUI_REDIS_URL=redis://host:6379 or BANGUI_WORKERS=1",
      });
    }
    if (c.BANGUI_SESSION_IDLE_SECONDS !== undefined && c.BANGUI_SESSION_IDLE_SECONDS > c.BANGUI_SESSION_TTL_SECONDS) {
      ctx.addIssue({
        code: "custom",
        path: ["BANGUI_SESSION_IDLE_SECONDS"],
        message: "must not exceed BANGUI_SESSION_TTL_SECONDS (a session never outlives its absolute lifetime)",
      });
    }
  });

/** The parsed, frozen configuration of one process. */
export interface Config {
  /** Unset: the process-local in-memory backend. */
  redis: RedisTarget | undefined;
  workers: number;
  host: string;
  port: number;
  sessionTtlSeconds: number;
  /** Sliding idle timeout; never extends a session beyond `sessionTtlSeconds`. */
  sessionIdleSeconds: number | undefined;
  maxSessionsPerUser: number | undefined;
  usersFile: string;
  cookieSecure: boolean;
  keyPrefix: string;
  memoryMaxSessions: number;
  /** Near-cache in each worker (Redis only). @default true with Redis */
  nearCache: boolean;
  nearCacheMaxAgeMs: number;
  nearCacheMaxEntries: number;
  loginMaxFailures: number;
  loginWindowSeconds: number;
  redisCommandTimeoutMs: number;
  redisConnectTimeoutMs: number;
  /** "auto": every replica connected to the master; 0: off. */
  redisWaitReplicas: "auto" | number;
  redisWaitTimeoutMs: number;
  /** Express `trust proxy` setting, unset: do not trust X-Forwarded-For. */
  trustProxy: string | undefined;
  bodyLimitBytes: number;
  shutdownTimeoutMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
}

/** Parses the environment (or any string map) into a Config; throws ConfigError on any invalid value. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Readonly<Config> {
  const picked: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) picked[key] = env[key];
  const result = schema.safeParse(picked);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${String(i.path[0] ?? "config")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${issues.join("\n  ")}`, issues);
  }
  const c = result.data;
  return Object.freeze({
    redis: c.BANGUI_REDIS_URL,
    workers: c.BANGUI_WORKERS,
    host: c.BANGUI_HOST,
    port: c.BANGUI_PORT,
    sessionTtlSeconds: c.BANGUI_SESSION_TTL_SECONDS,
    sessionIdleSeconds: c.BANGUI_SESSION_IDLE_SECONDS,
    maxSessionsPerUser: c.BANGUI_MAX_SESSIONS_PER_USER,
    usersFile: c.BANGUI_USERS_FILE,
    cookieSecure: c.BANGUI_COOKIE_SECURE ?? c.NODE_ENV === "production",
    keyPrefix: c.BANGUI_KEY_PREFIX,
    memoryMaxSessions: c.BANGUI_MEMORY_MAX_SESSIONS,
    nearCache: c.BANGUI_NEAR_CACHE ?? true,
    nearCacheMaxAgeMs: c.BANGUI_NEAR_CACHE_MAX_AGE_MS,
    nearCacheMaxEntries: c.BANGUI_NEAR_CACHE_MAX_ENTRIES,
    loginMaxFailures: c.BANGUI_LOGIN_MAX_FAILURES,
    loginWindowSeconds: c.BANGUI_LOGIN_WINDOW_SECONDS,
    redisCommandTimeoutMs: c.BANGUI_REDIS_COMMAND_TIMEOUT_MS,
    redisConnectTimeoutMs: c.BANGUI_REDIS_CONNECT_TIMEOUT_MS,
    redisWaitReplicas: c.BANGUI_REDIS_WAIT_REPLICAS,
    redisWaitTimeoutMs: c.BANGUI_REDIS_WAIT_TIMEOUT_MS,
    trustProxy: c.BANGUI_TRUST_PROXY,
    bodyLimitBytes: c.BANGUI_BODY_LIMIT_BYTES,
    shutdownTimeoutMs: c.BANGUI_SHUTDOWN_TIMEOUT_MS,
    logLevel: c.BANGUI_LOG_LEVEL,
  });
}

/** Maps the service's env `Config` onto the options of `createSessionCache` / `openSessionBackend`. */
export function sessionCacheOptions(
  config: Config,
  deps: { logger?: Logger; registry?: MetricsRegistry } = {},
): SessionCacheOptions {
  return {
    ...(config.redis !== undefined ? { url: config.redis } : {}),
    keyPrefix: config.keyPrefix,
    nearCache: config.nearCache,
    nearCacheMaxAgeMs: config.nearCacheMaxAgeMs,
    nearCacheMaxEntries: config.nearCacheMaxEntries,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    connectTimeoutMs: config.redisConnectTimeoutMs,
    waitReplicas: config.redisWaitReplicas,
    waitTimeoutMs: config.redisWaitTimeoutMs,
    memoryMaxSessions: config.memoryMaxSessions,
    ...(deps.registry !== undefined ? { registry: deps.registry } : {}),
    ...(deps.logger !== undefined ? { logger: deps.logger } : {}),
  };
}
