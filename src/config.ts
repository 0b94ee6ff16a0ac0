/**
 * One zod schema for every BANGUI_* variable. `loadConfig(env)` is pure: it reads only the object it is
 * given and returns a frozen, typed Config, or throws a ConfigError naming each variable and problem.
 */
import { z } from "zod";
import type { SessionCacheOptions } from "./cache/factory";
import type { MetricsRegistry } from "./cache/metrics";
import { ConfigError } from "./errors";
import type { Logger } from "./logger";
import { parseRedisUrl, type RedisTarget } from "./redis-url";
import { parseTrustProxy, type TrustProxy } from "./trust-proxy";
import { parseHostRule } from "./auth/redirects";

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

const trustProxy = z.string().transform((raw, ctx): TrustProxy => {
  try {
    return parseTrustProxy(raw);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

/** `https://auth.example.com` (an origin: no path, query, userinfo). */
const publicUrl = z.string().transform((raw, ctx): string => {
  let url: URL | undefined;
  try {
    url = new URL(raw.trim());
  } catch {
    // reported below
  }
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:") || url.username !== "" || url.password !== "") {
    ctx.addIssue({ code: "custom", message: "must be an http(s) origin such as https://auth.example.com" });
    return z.NEVER;
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    ctx.addIssue({ code: "custom", message: "must be an origin without path, query or fragment (https://auth.example.com)" });
    return z.NEVER;
  }
  return url.origin;
});

/** Comma list of hosts (`app.example.com`, `*.example.com`, `host:port`). */
const hostList = z.string().transform((raw, ctx): string[] => {
  const hosts = raw.split(",").map((h) => h.trim()).filter((h) => h !== "");
  for (const host of hosts) {
    try {
      parseHostRule(host);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
  }
  return hosts;
});

/** A cookie Domain attribute: a host name, no port, scheme or path. */
const cookieDomain = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, "must be a domain name such as example.com");

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
const SESSION_BACKENDS = ["auto", "memory", "ipc", "redis"] as const;

/** `auto`: Redis when `BANGUI_REDIS_URL` is set, else ipc for several workers, else memory. */
function resolveBackend(c: { BANGUI_SESSION_BACKEND: (typeof SESSION_BACKENDS)[number]; BANGUI_REDIS_URL?: unknown; BANGUI_WORKERS: number }) {
  if (c.BANGUI_SESSION_BACKEND !== "auto") return c.BANGUI_SESSION_BACKEND;
  if (c.BANGUI_REDIS_URL !== undefined) return "redis";
  return c.BANGUI_WORKERS > 1 ? "ipc" : "memory";
}

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
    BANGUI_COOKIE_DOMAIN: optional(cookieDomain),
    BANGUI_PUBLIC_URL: optional(publicUrl),
    BANGUI_ALLOWED_REDIRECT_HOSTS: optional(hostList),
    BANGUI_KEY_PREFIX: optional(
      z.string().regex(/^[A-Za-z0-9:_.{}-]{1,64}$/, "must be 1-64 characters of A-Z a-z 0-9 : _ . - { }"),
    ).default("bangui:"),
    BANGUI_MEMORY_MAX_SESSIONS: optional(int(1, 100_000_000)).default(100_000),
    BANGUI_NEAR_CACHE: optional(bool),
    BANGUI_NEAR_CACHE_MAX_AGE_MS: optional(int(1, 86_400_000)).default(60_000),
    BANGUI_NEAR_CACHE_MAX_ENTRIES: optional(int(1, 100_000_000)).default(100_000),
    BANGUI_NEAR_CACHE_FRESHNESS: optional(z.string().trim().toLowerCase().pipe(z.enum(["strict", "bounded"], { message: "must be strict or bounded" }))).default("strict"),
    BANGUI_LOGIN_MAX_FAILURES: optional(int(1, 1_000_000)).default(10),
    BANGUI_LOGIN_WINDOW_SECONDS: optional(int(1, 31_536_000)).default(900),
    BANGUI_LOGIN_MAX_PER_IP: optional(int(1, 1_000_000)).default(100),
    BANGUI_SESSION_BACKEND: optional(
      z.string().trim().toLowerCase().pipe(z.enum(SESSION_BACKENDS, { message: `must be one of ${SESSION_BACKENDS.join(", ")}` })),
    ).default("auto"),
    BANGUI_SESSIONS_FILE: optional(z.string().trim().min(1)),
    BANGUI_IPC_COMMAND_TIMEOUT_MS: optional(int(10, 60_000)).default(1000),
    BANGUI_REDIS_COMMAND_TIMEOUT_MS: optional(int(10, 60_000)).default(500),
    BANGUI_REDIS_CONNECT_TIMEOUT_MS: optional(int(10, 60_000)).default(2000),
    BANGUI_REDIS_WAIT_REPLICAS: optional(
      z.union([z.literal("auto"), int(0, 100)], { message: 'must be "auto" or a number of replicas (0 turns it off)' }),
    ).default("auto"),
    BANGUI_REDIS_WAIT_TIMEOUT_MS: optional(int(1, 60_000)).default(500),
    BANGUI_TRUST_PROXY: optional(trustProxy),
    BANGUI_BODY_LIMIT_BYTES: optional(int(64, 10_485_760)).default(16_384),
    BANGUI_SHUTDOWN_TIMEOUT_MS: optional(int(100, 60_000)).default(8000),
    BANGUI_LOG_LEVEL: optional(z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(", ")}` })).default("info"),
  })
  .superRefine((c, ctx) => {
    const backend = resolveBackend(c);
    if (backend === "memory" && c.BANGUI_WORKERS > 1) {
      ctx.addIssue({
        code: "custom",
        path: ["BANGUI_SESSION_BACKEND"],
        message:
          `memory keeps sessions per process, so it runs one worker only, not BANGUI_WORKERS=${c.BANGUI_WORKERS}: a login or ` +
          "logout on one worker would not be seen by the others. Set BANGUI_SESSION_BACKEND=ipc (or auto) to share them " +
          "between the workers of this machine, or BANGUI_REDIS_URL=redis://host:6379, or BANGUI_WORKERS=1",
      });
    }
    if (backend === "redis" && c.BANGUI_REDIS_URL === undefined) {
      ctx.addIssue({ code: "custom", path: ["BANGUI_SESSION_BACKEND"], message: "redis needs BANGUI_REDIS_URL=redis://host:6379" });
    }
    if (backend === "redis" && c.BANGUI_SESSIONS_FILE !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["BANGUI_SESSIONS_FILE"],
        message: "applies to the memory and ipc backends only (with Redis the sessions live in Redis): unset it",
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
  /** Where sessions live (`BANGUI_SESSION_BACKEND`, `auto` resolved). */
  sessionBackend: "memory" | "ipc" | "redis";
  /** memory/ipc: the snapshot file that keeps sessions across a restart. @default undefined (none) */
  sessionsFile: string | undefined;
  /** ipc: how long a worker waits for the primary before answering 503. @default 1000 */
  ipcCommandTimeoutMs: number;
  /** Login attempts (any username) per IP per window before 429. @default 100 */
  loginMaxPerIp: number;
  workers: number;
  host: string;
  port: number;
  sessionTtlSeconds: number;
  /** Sliding idle timeout; never extends a session beyond `sessionTtlSeconds`. */
  sessionIdleSeconds: number | undefined;
  maxSessionsPerUser: number | undefined;
  usersFile: string;
  cookieSecure: boolean;
  /** `Domain` of the session cookie (login on auth.example.com reaching app.example.com); unset: host-only. */
  cookieDomain: string | undefined;
  /** The service's external origin (`https://auth.example.com`), for absolute login links; unset: relative links. */
  publicUrl: string | undefined;
  /** Hosts a login may send the browser back to. @default the host of `publicUrl` (none without it) */
  allowedRedirectHosts: readonly string[];
  keyPrefix: string;
  memoryMaxSessions: number;
  /** Near-cache in each worker (Redis only). @default true with Redis */
  nearCache: boolean;
  nearCacheMaxAgeMs: number;
  nearCacheMaxEntries: number;
  /** "strict": no stale accept by construction (a subscriber round trip per batch of hits); "bounded": within the command timeout. @default "strict" */
  nearCacheFreshness: "strict" | "bounded";
  loginMaxFailures: number;
  loginWindowSeconds: number;
  redisCommandTimeoutMs: number;
  redisConnectTimeoutMs: number;
  /** "auto": every replica connected to the master; 0: off. */
  redisWaitReplicas: "auto" | number;
  redisWaitTimeoutMs: number;
  /** Express `trust proxy` setting (validated), unset: do not trust X-Forwarded-For. */
  trustProxy: TrustProxy | undefined;
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
    sessionBackend: resolveBackend(c),
    sessionsFile: c.BANGUI_SESSIONS_FILE,
    ipcCommandTimeoutMs: c.BANGUI_IPC_COMMAND_TIMEOUT_MS,
    loginMaxPerIp: c.BANGUI_LOGIN_MAX_PER_IP,
    workers: c.BANGUI_WORKERS,
    host: c.BANGUI_HOST,
    port: c.BANGUI_PORT,
    sessionTtlSeconds: c.BANGUI_SESSION_TTL_SECONDS,
    sessionIdleSeconds: c.BANGUI_SESSION_IDLE_SECONDS,
    maxSessionsPerUser: c.BANGUI_MAX_SESSIONS_PER_USER,
    usersFile: c.BANGUI_USERS_FILE,
    cookieSecure: c.BANGUI_COOKIE_SECURE ?? c.NODE_ENV === "production",
    cookieDomain: c.BANGUI_COOKIE_DOMAIN,
    publicUrl: c.BANGUI_PUBLIC_URL,
    allowedRedirectHosts: Object.freeze(
      c.BANGUI_ALLOWED_REDIRECT_HOSTS ?? (c.BANGUI_PUBLIC_URL !== undefined ? [new URL(c.BANGUI_PUBLIC_URL).host] : []),
    ),
    keyPrefix: c.BANGUI_KEY_PREFIX,
    memoryMaxSessions: c.BANGUI_MEMORY_MAX_SESSIONS,
    nearCache: c.BANGUI_NEAR_CACHE ?? true,
    nearCacheMaxAgeMs: c.BANGUI_NEAR_CACHE_MAX_AGE_MS,
    nearCacheMaxEntries: c.BANGUI_NEAR_CACHE_MAX_ENTRIES,
    nearCacheFreshness: c.BANGUI_NEAR_CACHE_FRESHNESS,
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
    nearCacheFreshness: config.nearCacheFreshness,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    connectTimeoutMs: config.redisConnectTimeoutMs,
    waitReplicas: config.redisWaitReplicas,
    waitTimeoutMs: config.redisWaitTimeoutMs,
    memoryMaxSessions: config.memoryMaxSessions,
    ...(deps.registry !== undefined ? { registry: deps.registry } : {}),
    ...(deps.logger !== undefined ? { logger: deps.logger } : {}),
  };
}
