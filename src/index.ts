/**
 * `bangui-session-cache`: the cache layer. Importing it has no side effect: no metrics registered, no
 * timer, no connection (those start in `createSessionCache` or a backend's constructor).
 * @packageDocumentation
 */
export {
  createSessionCache,
  openSessionBackend,
  type SessionCacheOptions,
  type SessionBackend,
} from "./cache/factory";
export { SessionSchema, type Session, type SessionCache, type IndexedSession } from "./cache/types";
export { InMemorySessionCache, type InMemorySessionCacheOptions } from "./cache/memory";
export { NoOpSessionCache } from "./cache/noop";
export { RedisSessionCache, type RedisSessionCacheOptions } from "./cache/redis";
export { NearCache, type NearCacheOptions } from "./cache/near-cache";
export type { NearFreshness, TrackingMode } from "./cache/near-core";
export { createKeySpace, sha256Hex, type KeySpace } from "./cache/keys";
export { isCluster } from "./cache/is-cluster";
export {
  createPromCacheMetrics,
  noopCacheMetrics,
  type CacheMetrics,
  type CacheCounter,
  type MetricsRegistry,
} from "./cache/metrics";
export { sessionIdFromToken, newToken } from "./auth/tokens";
export { parseRedisUrl, type RedisTarget, type RedisNode } from "./redis-url";
export { SessionBackendUnavailableError, ConfigError } from "./errors";
export { silentLogger, type Logger } from "./logger";
