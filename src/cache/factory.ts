import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { sessionCacheOptions, type Config } from "../config";
import { ConfigError } from "../errors";
import { silentLogger, type Logger } from "../logger";
import { parseRedisUrl, type RedisTarget } from "../redis-url";
import { IpcSessionCache } from "./ipc";
import { isCluster } from "./is-cluster";
import { InMemorySessionCache } from "./memory";
import { createPromCacheMetrics, noopCacheMetrics, type CacheMetrics, type MetricsRegistry } from "./metrics";
import { DEFAULT_PING_INTERVAL_MS, NearCache } from "./near-cache";
import { RedisSessionCache } from "./redis";
import { ChangeCountingCache } from "./sessions-file";
import type { SessionCache } from "./types";
import type { NearFreshness } from "./near-core";

/** What the service needs from the backend: the cache, and the Redis client for login throttling. */
export interface SessionBackend {
  cache: SessionCache;
  /** The Redis client (login throttling shares it); undefined for the in-memory backend. */
  redis: Redis | Cluster | undefined;
  /** Closes the cache and the client. Idempotent. */
  close(): Promise<void>;
}

/** Capped exponential backoff between reconnection attempts (ms). */
export function backoff(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 10), 2000);
}

/**
 * Builds an ioredis client for a parsed `BANGUI_REDIS_URL`, fail-fast: no offline queue, one retry per
 * request, command and connect timeouts from the config, capped reconnection backoff.
 * @param options.lazyConnect @default false
 * @param options.protocol RESP version. @default 2 (ioredis default)
 * @param options.reportsUp this is the data connection: `bangui_session_backend_up` follows it (not the
 *   near-cache subscriber's nor the WAIT connection's state). @default false
 */
export function createRedisClient(
  target: RedisTarget,
  config: Pick<Config, "redisCommandTimeoutMs" | "redisConnectTimeoutMs">,
  options: {
    lazyConnect?: boolean;
    protocol?: 2 | 3;
    logger?: Logger;
    metrics?: CacheMetrics;
    reportsUp?: boolean;
  } = {},
): Redis | Cluster {
  const common: RedisOptions = {
    commandTimeout: config.redisCommandTimeoutMs,
    connectTimeout: config.redisConnectTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: backoff,
    lazyConnect: options.lazyConnect ?? false,
    ...(options.protocol !== undefined ? { protocol: options.protocol } : {}),
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
  } as RedisOptions;

  let client: Redis | Cluster;
  if (target.kind === "standalone") {
    client = new Redis({
      ...common,
      host: target.host,
      port: target.port,
      db: target.db,
      ...(target.tls ? { tls: {} } : {}),
    });
  } else if (target.kind === "sentinel") {
    client = new Redis({
      ...common,
      sentinels: target.sentinels,
      name: target.masterName,
      db: target.db,
      sentinelRetryStrategy: backoff,
      // ioredis sets no timeout on sentinel queries: a hung sentinel (accepting, never answering) would
      // stall every reconnect for good instead of letting the next sentinel answer.
      sentinelCommandTimeout: config.redisConnectTimeoutMs,
      // Follow +switch-master at once: without it the client stays on an old master that is still up
      // (planned failover, healed partition) until Sentinel demotes it ~10 s later, and every write made
      // there meanwhile, logouts included, is discarded when it resyncs from the new master.
      failoverDetector: true,
      ...(target.username !== undefined ? { sentinelUsername: target.username } : {}),
      ...(target.password !== undefined ? { sentinelPassword: target.password } : {}),
    });
    // ioredis 6: quit() ends the data connection but not the failover detector's sentinel connections
    // (only its connector's disconnect() does); close them once the client has ended for good.
    // Also as soon as the connection it watches has closed: left subscribed while the client reconnects,
    // a +switch-master heard while an attempt waits for a sentinel's answer (slow under load) aborts
    // that attempt with "Connection is closed." and ends the client for good. The reconnect asks the
    // sentinels anyway, and the next connection starts a detector of its own.
    const sentinelClient = client;
    const stopFailoverDetector = (): void => {
      (sentinelClient as unknown as { connector?: { failoverDetector?: { cleanup(): void } | null } }).connector
        ?.failoverDetector?.cleanup();
    };
    sentinelClient.on("close", stopFailoverDetector);
    sentinelClient.on("end", stopFailoverDetector);
  } else {
    const clusterOptions: ClusterOptions = {
      redisOptions: common,
      enableOfflineQueue: false,
      clusterRetryStrategy: backoff,
      slotsRefreshTimeout: config.redisConnectTimeoutMs,
      lazyConnect: options.lazyConnect ?? false,
      maxRedirections: 16,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
    };
    client = new Cluster(target.nodes, clusterOptions);
  }

  const log = options.logger;
  // Without an 'error' listener an unreachable Redis would crash the process with an unhandled event.
  client.on("error", (err: Error) => {
    // ioredis messages carry host:port at most, never credentials (they are not in the URL we log).
    log?.warn({ err: { name: err.name, message: err.message } }, "redis connection error");
  });
  if (options.reportsUp === true) {
    const metrics = options.metrics ?? noopCacheMetrics;
    client.on("ready", () => metrics.backendUp.set(1));
    client.on("end", () => metrics.backendUp.set(0));
    client.on("close", () => metrics.backendUp.set(0));
  }
  return client;
}

/**
 * Options of `createSessionCache`: a plain object, every field optional. Neither `url` nor `client`:
 * the process-local in-memory cache.
 */
export interface SessionCacheOptions {
  /**
   * Redis to use: `redis://[user:pass@]host:port[/db]`, `rediss://...` (TLS),
   * `redis+sentinel://host:port[,host:port...]/<masterName>[/db]`, `redis+cluster://host:port[,...]`,
   * or the result of `parseRedisUrl`. Not together with `client`.
   * @default undefined (in-memory)
   */
  url?: string | RedisTarget;
  /**
   * Your own ioredis client (`Redis`, Sentinel-backed `Redis`, or `Cluster`, from any ioredis 6 copy:
   * a Cluster is recognised by `client.isCluster`). Give it `enableOfflineQueue: false` and a
   * `commandTimeout` so that an outage fails fast. It is not closed by the cache's `close()`.
   * @default undefined
   */
  client?: Redis | Cluster;
  /** Prefix of every Redis key the cache writes. @default "bangui:" */
  keyPrefix?: string;
  /** Per-process near-cache over Redis, kept coherent by Redis invalidation. @default true */
  nearCache?: boolean;
  /** Longest life of a near-cache entry, whatever the key's TTL. @default 60_000 */
  nearCacheMaxAgeMs?: number;
  /** Most entries in the near-cache (LRU). @default 100_000 */
  nearCacheMaxEntries?: number;
  /**
   * `"strict"`: a near-cache hit is served only after a (batched) round trip on the invalidation
   * connection that started after the read, so a removal acknowledged anywhere is never served again;
   * `"bounded"`: no round trip, a removal is seen within the command timeout (see docs/SECURITY.md).
   * @default "strict"
   */
  nearCacheFreshness?: NearFreshness;
  /** ioredis `commandTimeout` of the clients built from `url`; bounds every call during an outage. @default 500 */
  commandTimeoutMs?: number;
  /** ioredis `connectTimeout` of the clients built from `url`. @default 2000 */
  connectTimeoutMs?: number;
  /**
   * After a removal (`invalidate`, `invalidateUser`), `WAIT` for this many replicas; `"auto"`: those
   * connected to the master; `0`: do not wait.
   * @default "auto"
   */
  waitReplicas?: "auto" | number;
  /** No acknowledgement from the replicas within it: the removal rejects. @default 500 */
  waitTimeoutMs?: number;
  /** In-memory cache only: most sessions kept (LRU). @default 100_000 */
  memoryMaxSessions?: number;
  /** A prom-client `Registry` to register the cache's metrics on. @default undefined (no metrics) */
  registry?: MetricsRegistry;
  /** A pino logger (the cache logs connection errors and removed corrupt values). @default silent */
  logger?: Logger;
}

/**
 * Builds a session cache from a plain options object: in-memory without `url`/`client`, else Redis
 * (standalone, Sentinel or Cluster after the URL scheme or the client), with the near-cache unless
 * `nearCache: false`. Nothing happens at import: connections start here.
 * @example
 * const cache = createSessionCache({ url: "redis://127.0.0.1:6379", keyPrefix: "app:" });
 * await cache.set(id, session, 3600);
 */
export function createSessionCache(options: SessionCacheOptions = {}): SessionCache {
  return openSessionBackend(options).cache;
}

/** Like `createSessionCache`, but also hands out the Redis client (the service's login throttle shares it). */
export function openSessionBackend(options: SessionCacheOptions): SessionBackend {
  const metrics = options.registry !== undefined ? createPromCacheMetrics(options.registry) : noopCacheMetrics;
  const rootLogger = options.logger ?? silentLogger();
  if (options.url !== undefined && options.client !== undefined) {
    throw new ConfigError("createSessionCache: give either url or client, not both");
  }
  if (options.url === undefined && options.client === undefined) {
    const cache = new InMemorySessionCache({ maxSessions: options.memoryMaxSessions ?? 100_000, metrics });
    metrics.backendUp.set(1);
    return { cache, redis: undefined, close: () => cache.close() };
  }
  const logger = rootLogger.child({ component: "session-cache" });
  const timeouts = {
    redisCommandTimeoutMs: options.commandTimeoutMs ?? 500,
    redisConnectTimeoutMs: options.connectTimeoutMs ?? 2000,
  };
  let target: RedisTarget | undefined;
  if (typeof options.url === "string") {
    try {
      target = parseRedisUrl(options.url);
    } catch (err) {
      throw new ConfigError(`createSessionCache: url ${(err as Error).message}`, [], { cause: err });
    }
  } else {
    target = options.url;
  }
  const client = options.client ?? createRedisClient(target!, timeouts, { logger, metrics, reportsUp: true });
  const ownsClient = options.client === undefined;
  const waitReplicas = options.waitReplicas ?? "auto";
  const waitTimeoutMs = options.waitTimeoutMs ?? 500;
  // WAIT blocks its connection: removals and their WAIT get one of their own, whose command timeout
  // leaves room for the whole WAIT timeout (so the WAIT timeout may exceed the command timeout). With a
  // client of the caller's, WAIT runs on that client. Like the data client it re-sends a command after a
  // Cluster redirection or failover (without that, the first removal routed to a node it has not
  // connected to yet fails); a removal answered 503 may so still take effect later, which is what 503
  // promises ("the session may still be valid"), never the reverse.
  const waitClient =
    waitReplicas === 0 || target === undefined
      ? undefined
      : createRedisClient(
          target,
          { ...timeouts, redisCommandTimeoutMs: timeouts.redisCommandTimeoutMs + waitTimeoutMs },
          { logger },
        );
  const redisCache = new RedisSessionCache({
    client,
    keyPrefix: options.keyPrefix ?? "bangui:",
    logger,
    waitReplicas,
    waitTimeoutMs,
    ...(waitClient !== undefined ? { waitClient } : {}),
    ownsClient,
    metrics,
  });
  let cache: SessionCache = redisCache;
  const nearCache = options.nearCache ?? true;
  const commandTimeoutMs =
    (options.client !== undefined && !isCluster(options.client) ? options.client.options.commandTimeout : undefined) ??
    timeouts.redisCommandTimeoutMs;

  // ---- NEAR-CACHE WRAP (src/cache/near-cache.ts) ----
  if (nearCache) {
    const own = client;
    cache = new NearCache({
      remote: redisCache,
      // On a Cluster: one subscriber per master, on that master (a plain connection, same credentials).
      createSubscriber: (node) => {
        if (target !== undefined) {
          const at: RedisTarget =
            node !== undefined && target.kind === "cluster"
              ? { kind: "standalone", url: "", tls: false, host: node.host, port: node.port, db: 0, username: target.username, password: target.password }
              : target;
          return createRedisClient(at, timeouts, { protocol: 2, logger }) as Redis;
        }
        if (isCluster(own)) {
          const redisOptions = (own.options.redisOptions ?? {}) as RedisOptions;
          const subscriber = new Redis({ ...redisOptions, host: node?.host, port: node?.port, protocol: 2, enableOfflineQueue: false });
          subscriber.on("error", (err: Error) => logger.warn({ err: { name: err.name, message: err.message } }, "redis connection error"));
          return subscriber;
        }
        return own.duplicate({ protocol: 2 });
      },
      maxAgeMs: options.nearCacheMaxAgeMs ?? 60_000,
      maxEntries: options.nearCacheMaxEntries ?? 100_000,
      // A local hit is trusted only while Redis answered within one command timeout, the same bound an
      // uncached read has: a frozen Redis turns cached sessions into 503s as fast as uncached ones.
      pingIntervalMs: Math.max(50, Math.min(DEFAULT_PING_INTERVAL_MS, Math.floor(commandTimeoutMs / 3))),
      maxSilenceMs: commandTimeoutMs,
      freshness: options.nearCacheFreshness ?? "strict",
      logger,
      metrics,
    });
  }
  // ---- END NEAR-CACHE WRAP ----
  let closed = false;
  return {
    cache,
    redis: client,
    async close() {
      if (closed) return;
      closed = true;
      await cache.close();
    },
  };
}

/**
 * The service's backend from its env `Config`: the ipc client when the cluster primary holds the
 * sessions, the in-memory cache (counting changes for `BANGUI_SESSIONS_FILE`), or Redis through
 * `openSessionBackend(sessionCacheOptions(config))`. The service passes its prom-client registry.
 */
export function createSessionBackend(config: Config, deps: { logger: Logger; registry?: MetricsRegistry }): SessionBackend {
  if (config.sessionBackend === "redis") return openSessionBackend(sessionCacheOptions(config, deps));
  const metrics = deps.registry !== undefined ? createPromCacheMetrics(deps.registry) : noopCacheMetrics;
  let cache: SessionCache;
  if (config.sessionBackend === "ipc") {
    // The cluster primary holds the sessions (src/cache/ipc.ts, src/cluster/primary.ts).
    cache = new IpcSessionCache({
      commandTimeoutMs: config.ipcCommandTimeoutMs,
      nearCache: config.nearCache,
      maxEntries: config.nearCacheMaxEntries,
      maxAgeMs: config.nearCacheMaxAgeMs,
      logger: deps.logger.child({ component: "session-cache" }),
      metrics,
    });
  } else {
    const memory = new InMemorySessionCache({ maxSessions: config.memoryMaxSessions, metrics });
    // With BANGUI_SESSIONS_FILE the worker saves on changes (cluster/worker.ts): count them.
    cache = config.sessionsFile !== undefined ? new ChangeCountingCache(memory) : memory;
  }
  metrics.backendUp.set(1);
  return { cache, redis: undefined, close: () => cache.close() };
}
