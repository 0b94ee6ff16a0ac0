import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import type { Config } from "../config";
import type { Logger } from "../logger";
import { metrics } from "../metrics";
import type { RedisTarget } from "../redis-url";
import { IpcSessionCache } from "./ipc";
import { InMemorySessionCache } from "./memory";
import { ChangeCountingCache } from "./sessions-file";
import { DEFAULT_PING_INTERVAL_MS, NearCache } from "./near-cache";
import { RedisSessionCache } from "./redis";
import type { SessionCache } from "./types";

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
 * @param options.replayOnFailover Cluster: re-send a command whose node connection closed, once the slots
 *   are refreshed (also after its caller was answered with a timeout). Off for the WAIT connection: a
 *   logout answered 503 during a failover must not be replayed behind the caller's back. @default true
 * @param options.reportsUp this is the data connection: `bangui_session_backend_up` follows it (not the
 *   near-cache subscriber's nor the WAIT connection's state). @default false
 */
export function createRedisClient(
  target: RedisTarget,
  config: Config,
  options: { lazyConnect?: boolean; protocol?: 2 | 3; logger?: Logger; reportsUp?: boolean; replayOnFailover?: boolean } = {},
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
      // Follow +switch-master at once: without it the client stays on an old master that is still up
      // (planned failover, healed partition) until Sentinel demotes it ~10 s later, and every write made
      // there meanwhile, logouts included, is discarded when it resyncs from the new master.
      failoverDetector: true,
      ...(target.username !== undefined ? { sentinelUsername: target.username } : {}),
      ...(target.password !== undefined ? { sentinelPassword: target.password } : {}),
    });
    // ioredis 6: quit() ends the data connection but not the failover detector's sentinel connections
    // (only its connector's disconnect() does); close them once the client has ended for good.
    const sentinelClient = client;
    sentinelClient.on("end", () => {
      (sentinelClient as unknown as { connector?: { failoverDetector?: { cleanup(): void } | null } }).connector
        ?.failoverDetector?.cleanup();
    });
  } else {
    const clusterOptions: ClusterOptions = {
      redisOptions: common,
      enableOfflineQueue: false,
      clusterRetryStrategy: backoff,
      slotsRefreshTimeout: config.redisConnectTimeoutMs,
      lazyConnect: options.lazyConnect ?? false,
      maxRedirections: 16,
      retryDelayOnFailover: options.replayOnFailover === false ? 0 : 100,
      retryDelayOnClusterDown: options.replayOnFailover === false ? 0 : 100,
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
    client.on("ready", () => metrics.backendUp.set(1));
    client.on("end", () => metrics.backendUp.set(0));
    client.on("close", () => metrics.backendUp.set(0));
  }
  return client;
}

/**
 * The backend of one process: no `BANGUI_REDIS_URL` -> InMemorySessionCache(memoryMaxSessions);
 * otherwise RedisSessionCache on a client from `createRedisClient`.
 */
export function createSessionBackend(config: Config, deps: { logger: Logger }): SessionBackend {
  // ---- IPC BACKEND (ipc engineer, src/cache/ipc.ts): the cluster primary holds the sessions ----
  if (config.sessionBackend === "ipc") {
    const cache = new IpcSessionCache({
      commandTimeoutMs: config.ipcCommandTimeoutMs,
      nearCache: config.nearCache,
      maxEntries: config.nearCacheMaxEntries,
      maxAgeMs: config.nearCacheMaxAgeMs,
      logger: deps.logger.child({ component: "session-cache" }),
    });
    metrics.backendUp.set(1);
    return { cache, redis: undefined, close: () => cache.close() };
  }
  if (config.sessionBackend === "memory" || config.redis === undefined) {
    const memory = new InMemorySessionCache({ maxSessions: config.memoryMaxSessions });
    // With BANGUI_SESSIONS_FILE the worker saves on changes (cluster/worker.ts): count them.
    const cache = config.sessionsFile !== undefined ? new ChangeCountingCache(memory) : memory;
    metrics.backendUp.set(1);
    return { cache, redis: undefined, close: () => cache.close() };
  }
  const logger = deps.logger.child({ component: "session-cache" });
  const client = createRedisClient(config.redis, config, { logger, reportsUp: true });
  // WAIT blocks its connection: removals and their WAIT get one of their own, whose command timeout
  // leaves room for the whole WAIT timeout (so BANGUI_REDIS_WAIT_TIMEOUT_MS may exceed the command timeout).
  const waitClient =
    config.redisWaitReplicas === 0
      ? undefined
      : createRedisClient(
          config.redis,
          { ...config, redisCommandTimeoutMs: config.redisCommandTimeoutMs + config.redisWaitTimeoutMs },
          { logger, replayOnFailover: false },
        );
  const redisCache = new RedisSessionCache({
    client,
    ...(waitClient !== undefined ? { waitClient } : {}),
    keyPrefix: config.keyPrefix,
    logger,
    waitReplicas: config.redisWaitReplicas,
    waitTimeoutMs: config.redisWaitTimeoutMs,
    ownsClient: true,
  });
  let cache: SessionCache = redisCache;
  // ---- NEAR-CACHE WRAP (speed engineer, src/cache/near-cache.ts) ----
  if (config.nearCache) {
    const target = config.redis;
    cache = new NearCache({
      remote: redisCache,
      // On a Cluster: one subscriber per master, on that master (a plain connection, same credentials).
      createSubscriber: (node) =>
        createRedisClient(
          node !== undefined && target.kind === "cluster"
            ? { kind: "standalone", url: "", tls: false, host: node.host, port: node.port, db: 0, username: target.username, password: target.password }
            : target,
          config,
          { protocol: 2, logger },
        ) as Redis,
      maxAgeMs: config.nearCacheMaxAgeMs,
      maxEntries: config.nearCacheMaxEntries,
      freshness: config.nearCacheFreshness,
      // A local hit is trusted only while Redis answered within one command timeout, the same bound an
      // uncached read has: a frozen Redis turns cached sessions into 503s as fast as uncached ones.
      pingIntervalMs: Math.max(50, Math.min(DEFAULT_PING_INTERVAL_MS, Math.floor(config.redisCommandTimeoutMs / 3))),
      maxSilenceMs: config.redisCommandTimeoutMs,
      logger,
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

/** = `createSessionBackend(config, deps).cache` (its close() releases the client too). */
export function createSessionCache(config: Config, deps: { logger: Logger }): SessionCache {
  return createSessionBackend(config, deps).cache;
}
