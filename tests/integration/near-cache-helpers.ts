/** Shared set-up of the near-cache integration tests: two NearCache instances ("workers") on one Redis. */
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import Redis from "ioredis";
import { NearCache, RedisSessionCache, type NearFreshness, type Session, type SessionCache, type TrackingMode } from "../../src/cache";
import { createLogger, type Logger } from "../../src/logger";
import { metrics } from "../../src/metrics";

export function newId(): string {
  return randomBytes(32).toString("hex");
}

export function session(username: string, extra: Partial<Session> = {}): Session {
  const now = Date.now();
  return { username, createdAt: now, lastSeenAt: now, expiresAt: now + 600_000, ...extra };
}

/** A logger whose lines land in `lines` (parsed JSON). */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l.trim() !== "") lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger("info", sink), lines };
}

/** A near-cache as a worker would have it; `name` becomes the subscriber's connection name. */
export function makeNear(
  url: string,
  prefix: string,
  opts: { name?: string; enabled?: boolean; logger?: Logger; maxAgeMs?: number; subscriberUrl?: string; pingIntervalMs?: number; maxSilenceMs?: number; subscriberCommandTimeoutMs?: number; freshness?: NearFreshness; trackingMode?: TrackingMode } = {},
): NearCache & { subscribersCreated: number } {
  let created = 0;
  const near = new NearCache({
    remote: new RedisSessionCache({ client: new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: 1000 }), keyPrefix: prefix }),
    createSubscriber: () => {
      created++;
      return new Redis(opts.subscriberUrl ?? url, {
        protocol: 2,
        maxRetriesPerRequest: 1,
        commandTimeout: opts.subscriberCommandTimeoutMs ?? 500,
        retryStrategy: () => 50,
        ...(opts.name !== undefined ? { connectionName: opts.name } : {}),
      });
    },
    ...(opts.enabled !== undefined ? { enabled: opts.enabled } : {}),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    ...(opts.maxAgeMs !== undefined ? { maxAgeMs: opts.maxAgeMs } : {}),
    pingIntervalMs: opts.pingIntervalMs ?? 200,
    metrics,
    ...(opts.maxSilenceMs !== undefined ? { maxSilenceMs: opts.maxSilenceMs } : {}),
    ...(opts.freshness !== undefined ? { freshness: opts.freshness } : {}),
    ...(opts.trackingMode !== undefined ? { trackingMode: opts.trackingMode } : {}),
  });
  return Object.defineProperty(near, "subscribersCreated", { get: () => created }) as NearCache & { subscribersCreated: number };
}

export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function uniquePrefix(): string {
  return `nc${randomBytes(4).toString("hex")}:`;
}

/** Calls of one command so far (INFO commandstats). */
export async function commandCalls(redis: Redis, command: string): Promise<number> {
  const info = await redis.info("commandstats");
  const m = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
  return m ? Number(m[1]) : 0;
}

/** Local hits of one near-cache so far (its own count, whatever metrics it was given). */
export async function nearHits(near: NearCache | SessionCache): Promise<number> {
  return (near as NearCache).stats.hits;
}

/**
 * Runs `reads` (reads through one near-cache only) and asserts that each of its `count` reads was a local
 * hit: the hit counter grew by `count`, and Redis received no GET meanwhile (`admin` asks INFO).
 */
export async function expectLocalHits<R>(admin: Redis, near: NearCache, count: number, reads: () => Promise<R>): Promise<R> {
  const hitsBefore = await nearHits(near);
  const getsBefore = await commandCalls(admin, "get");
  const result = await reads();
  expect((await nearHits(near)) - hitsBefore).toBe(count);
  expect((await commandCalls(admin, "get")) - getsBefore).toBe(0);
  return result;
}
