import type { Redis } from "ioredis";
import { silentLogger, type Logger } from "../logger";
import { noopCacheMetrics, type CacheMetrics } from "./metrics";
import { DEFAULT_PING_INTERVAL_MS, NearCacheCore, type NearFreshness, type TrackingMode } from "./near-core";
import type { RedisSessionCache } from "./redis";
import type { IndexedSession, Session, SessionCache } from "./types";

export { DEFAULT_PING_INTERVAL_MS } from "./near-core";
export type { NearFreshness, TrackingMode } from "./near-core";

/** Options of the session near-cache. */
export interface NearCacheOptions {
  /** The Redis backend this layer sits on; its client becomes the tracked data connection. */
  remote: RedisSessionCache;
  /**
   * Builds the dedicated subscriber connection (same server as `remote.client`, `protocol: 2`: ioredis 6
   * drops RESP3 invalidation pushes, but a RESP2 subscriber gets them as pub/sub messages). Only the
   * factory builds clients, so it hands this in. Not called when `enabled` is false or on a Cluster.
   */
  createSubscriber: (node?: { host: string; port: number }) => Redis;
  /** False: nothing is cached locally, every read goes to Redis. @default true */
  enabled?: boolean;
  /** Upper bound of the life of a local entry, whatever the key's TTL. @default 60_000 */
  maxAgeMs?: number;
  /** Most entries kept locally (LRU). @default 100_000 */
  maxEntries?: number;
  /** @default "strict" (see NearFreshness and docs/SECURITY.md) */
  freshness?: NearFreshness;
  /** @default "default" */
  trackingMode?: TrackingMode;
  /** How often the subscriber is pinged, to notice a silently dead connection. @default DEFAULT_PING_INTERVAL_MS */
  pingIntervalMs?: number;
  /**
   * Local entries are served only while a subscriber PING sent within this time was answered; past it
   * every read goes to Redis. A frozen Redis (process stopped, sockets open) thus stops local hits this
   * long after its last reply, instead of after a failed ping. Keep it above `pingIntervalMs`. The
   * factory sets it to the command timeout. @default 3 x pingIntervalMs
   */
  maxSilenceMs?: number;
  /** Where the near-cache closes its subscriber on close(). @default true */
  ownsSubscriber?: boolean;
  /** @default a silent logger */
  logger?: Logger;
  /** Where hits, misses, invalidations and bypass time are counted. @default noopCacheMetrics */
  metrics?: CacheMetrics;
}

/**
 * The session cache with a per-process layer over the Redis backend (`NearCacheCore`): a local hit is a
 * validated, frozen `Session` kept coherent by Redis server-assisted invalidation; writes evict it
 * before and after they reach Redis. Whenever tracking is not known to be in place the layer is emptied
 * and bypassed; a server that refuses CLIENT TRACKING (or Redis Cluster) leaves it off, with one log line.
 */
export class NearCache implements SessionCache {
  readonly name: string;
  readonly remote: RedisSessionCache;
  /** False when built with `enabled: false`: every read goes to Redis. */
  readonly enabled: boolean;
  private readonly core: NearCacheCore<Session>;

  constructor(o: NearCacheOptions) {
    this.remote = o.remote;
    this.name = `near(${o.remote.name})`;
    this.enabled = o.enabled ?? true;
    const metrics = o.metrics ?? noopCacheMetrics;
    const remote = o.remote;
    this.core = new NearCacheCore<Session>({
      client: remote.client,
      keyPrefix: remote.keys.sessionPrefix,
      createSubscriber: o.createSubscriber,
      // RedisSessionCache.get parses, zod-checks, and removes what is unusable: one place for those rules.
      load: (id) => remote.get(id),
      lifeMsOf: (session) => session.expiresAt - Date.now(),
      enabled: this.enabled,
      ...(o.maxAgeMs !== undefined ? { maxAgeMs: o.maxAgeMs } : {}),
      ...(o.maxEntries !== undefined ? { maxEntries: o.maxEntries } : {}),
      ...(o.freshness !== undefined ? { freshness: o.freshness } : {}),
      ...(o.trackingMode !== undefined ? { trackingMode: o.trackingMode } : {}),
      pingIntervalMs: o.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      ...(o.maxSilenceMs !== undefined ? { maxSilenceMs: o.maxSilenceMs } : {}),
      ...(o.ownsSubscriber !== undefined ? { ownsSubscriber: o.ownsSubscriber } : {}),
      logger: o.logger ?? silentLogger(),
      counters: {
        hit: () => metrics.nearCacheHits.inc(),
        miss: () => metrics.nearCacheMisses.inc(),
        invalidation: () => metrics.nearCacheInvalidations.inc(),
        bypassed: (seconds) => metrics.nearCacheBypassSeconds.inc(seconds),
      },
    });
  }

  /** Local hits, reads through and invalidation messages of this instance. */
  get stats(): { readonly hits: number; readonly misses: number; readonly invalidations: number } {
    return this.core.stats;
  }

  /** True while local entries are served (tracking established). For tests and /metrics. */
  get tracking(): boolean {
    return this.core.tracking;
  }

  get(id: string): Promise<Session | null> {
    return this.core.get(id);
  }

  set(id: string, session: Session, ttlSeconds: number): Promise<void> {
    return this.core.write(id, () => this.remote.set(id, session, ttlSeconds));
  }

  update(id: string, session: Session, ttlSeconds: number): Promise<boolean> {
    return this.core.write(id, () => this.remote.update(id, session, ttlSeconds));
  }

  invalidate(id: string): Promise<void> {
    return this.core.write(id, () => this.remote.invalidate(id));
  }

  listUserSessions(username: string): Promise<IndexedSession[]> {
    return this.remote.listUserSessions(username);
  }

  invalidateUser(username: string): Promise<number> {
    return this.core.writeAll(() => this.remote.invalidateUser(username));
  }

  clear(): Promise<void> {
    return this.core.writeAll(() => this.remote.clear());
  }

  ping(): Promise<void> {
    return this.remote.ping();
  }

  async close(): Promise<void> {
    await this.core.close();
    await this.remote.close();
  }
}
