/**
 * Builds the app of the login service for supertest, on either backend: InMemorySessionCache, or
 * RedisSessionCache on a private redis-server (fail-fast client from the factory, unique key prefix).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { Cluster, Redis } from "ioredis";
import type { Express } from "express";
import { createKeySpace, createRedisClient, InMemorySessionCache, RedisSessionCache, type SessionCache } from "../../src/cache";
import { loadConfig, type Config } from "../../src/config";
import { createLogger, type Logger } from "../../src/logger";
import { parseRedisUrl } from "../../src/redis-url";
import { hashPassword } from "../../src/auth/passwords";
import { SessionService } from "../../src/auth/session-service";
import { LoginThrottle } from "../../src/auth/throttle";
import { UserStore } from "../../src/auth/users";
import { createApp } from "../../src/server/app";

export type BackendKind = "memory" | "redis";

/** Cheap scrypt for test users (the parameters live in the hash string; the dummy hash keeps the default). */
export const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };
export const PASSWORDS: Record<string, string> = { alice: "alice-password-1", bob: "bob-password-22" };

/** Writes a users file with alice and bob (cheap hashes) and returns its path. */
export async function writeTestUsersFile(dir: string): Promise<string> {
  const path = join(dir, "users.json");
  const users: Record<string, unknown> = {};
  for (const [name, pw] of Object.entries(PASSWORDS)) {
    users[name] = { passwordHash: await hashPassword(pw, FAST_SCRYPT), credentialId: randomBytes(8).toString("hex"), updatedAt: new Date().toISOString() };
  }
  const { writeFile } = await import("node:fs/promises");
  await writeFile(path, JSON.stringify({ version: 1, users }), { mode: 0o600 });
  return path;
}

export interface HarnessOptions {
  config?: Partial<Config>;
  clock?: () => number;
  /** Reuse a users file (two apps on one file). */
  usersFile?: string;
  /** Reuse a key prefix (two apps on one Redis). */
  keyPrefix?: string;
  verifyPassword?: (pw: string, hash: string) => Promise<boolean>;
  /** Share one in-memory cache between apps. */
  cache?: SessionCache;
}

export interface Harness {
  app: Express;
  config: Config;
  cache: SessionCache;
  users: UserStore;
  service: SessionService;
  redis: Redis | Cluster | undefined;
  keyPrefix: string;
  dir: string;
  /** Every log line written so far. */
  logs: string[];
  close(): Promise<void>;
}

export async function waitReady(client: Redis | Cluster): Promise<void> {
  if (client.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("redis not ready")), 5000);
    client.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Makes an app; `redisUrl` is required for the redis kind. */
export async function makeHarness(kind: BackendKind, redisUrl: string | undefined, opts: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "bangui-srv-"));
  const usersFile = opts.usersFile ?? (await writeTestUsersFile(dir));
  const keyPrefix = opts.keyPrefix ?? `t${randomBytes(5).toString("hex")}:`;
  const config: Config = { ...loadConfig({ BANGUI_USERS_FILE: usersFile, BANGUI_KEY_PREFIX: keyPrefix }), ...opts.config };
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const logger: Logger = createLogger("debug", sink);
  let cache: SessionCache;
  let redis: Redis | Cluster | undefined;
  if (kind === "redis") {
    if (redisUrl === undefined) throw new Error("redis harness needs a url");
    redis = createRedisClient(parseRedisUrl(redisUrl), config);
    await waitReady(redis);
    cache = new RedisSessionCache({ client: redis, keyPrefix, ownsClient: true });
  } else {
    cache = opts.cache ?? new InMemorySessionCache(opts.clock ? { clock: opts.clock } : {});
  }
  const users = await UserStore.open(usersFile, { watchIntervalMs: 50 });
  const throttle = new LoginThrottle({
    maxFailures: config.loginMaxFailures,
    windowSeconds: config.loginWindowSeconds,
    ...(redis ? { redis } : {}),
    keyPrefix: createKeySpace(keyPrefix).throttlePrefix,
    maxPerIp: config.loginMaxPerIp,
    ipKeyPrefix: createKeySpace(keyPrefix).throttleIpPrefix,
  });
  const service = new SessionService({
    cache,
    users,
    throttle,
    ttlSeconds: config.sessionTtlSeconds,
    ...(config.sessionIdleSeconds !== undefined ? { idleSeconds: config.sessionIdleSeconds } : {}),
    ...(config.maxSessionsPerUser !== undefined ? { maxSessionsPerUser: config.maxSessionsPerUser } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.verifyPassword ? { verifyPassword: opts.verifyPassword } : {}),
    logger,
  });
  const app = createApp({
    sessions: service,
    config,
    logger,
    ready: async () => {
      try {
        await cache.ping();
        return true;
      } catch {
        return false;
      }
    },
  });
  return {
    app,
    config,
    cache,
    users,
    service,
    redis,
    keyPrefix,
    dir,
    logs,
    async close() {
      users.close();
      if (!opts.cache) await cache.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The token in a login response's Set-Cookie. */
export function tokenFrom(res: { headers: Record<string, unknown> }): string {
  const raw = res.headers["set-cookie"];
  const cookies = (Array.isArray(raw) ? raw : [raw]) as string[];
  const match = /bangui_session=([^;]*)/.exec(cookies.find((c) => c.startsWith("bangui_session=")) ?? "");
  if (!match?.[1]) throw new Error("no session cookie");
  return match[1];
}
