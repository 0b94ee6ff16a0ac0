import { EventEmitter } from "node:events";
import type { Cluster, Redis } from "ioredis";
import type { MetricsRegistry } from "../cache/metrics";
import type { NearFreshness } from "../cache/near-core";
import type { Logger } from "../logger";
import type { StoreSessionData } from "./value";

/** Options of `RedisSessionStore`. */
export interface RedisSessionStoreOptions {
  /**
   * An ioredis client: `Redis` (standalone or Sentinel) or `Cluster`, from any ioredis 6 copy. Give it
   * `enableOfflineQueue: false` and a `commandTimeout` so that an outage fails fast.
   */
  client: Redis | Cluster;
  /** Prefix of every key the store writes (`<prefix><sha256(sid)>`, `<prefix>user:<sha256(user)>`). @default "sess:" */
  prefix?: string;
  /** Lifetime of a session whose cookie has no `expires` (a browser-session cookie). @default 86400 */
  ttlSeconds?: number;
  /** Per-process near-cache kept coherent by Redis invalidation (standalone and Sentinel). @default true */
  nearCache?: boolean;
  /** Longest life of a near-cache entry. @default 60_000 */
  nearCacheMaxAgeMs?: number;
  /** Most sessions in the near-cache (LRU). @default 10_000 */
  nearCacheMaxEntries?: number;
  /**
   * `"bounded"`: a local hit costs no Redis command; a destroy elsewhere is seen as soon as its
   * invalidation message arrives (Redis sends it before it answers the destroy), and local hits stop
   * `commandTimeoutMs` after the subscriber last answered. `"strict"`: each hit waits for a subscriber
   * PING sent after the call (batched), so nothing written before the call is ever missed.
   * @default "bounded"
   */
  freshness?: NearFreshness;
  /**
   * `touch` writes (PEXPIRE) only when it would push the expiry by at least this fraction of the
   * session's lifetime past the expiry this process last wrote or read. @default 0.1
   */
  touchAfterFraction?: number;
  /** The user of a session, for `destroyUser` and `listUser`; undefined: not indexed. @default undefined */
  userOf?: (session: StoreSessionData) => string | undefined;
  /** Every call rejects after this long without an answer. @default the client's commandTimeout, else 1000 */
  commandTimeoutMs?: number;
  /** Builds the near-cache's RESP2 subscriber on the client's server. @default client.duplicate({ protocol: 2 }) */
  createSubscriber?: () => Redis;
  /** A prom-client Registry for the store's metrics (corrupt values, near-cache hits...). @default none */
  registry?: MetricsRegistry;
  /** @default a silent logger */
  logger?: Logger;
}

/** A session of one user as `listUser` returns it; `id` is the hash of the session id. */
export interface UserSession {
  id: string;
  session: StoreSessionData;
}

export type StoreBaseClass = new () => EventEmitter;

/**
 * express-session's `Store` when express-session is installed (its `createSession`, `load` and
 * `regenerate` are needed by express-session), else a plain EventEmitter (`@fastify/session` and the
 * like need only get/set/destroy).
 */
function loadStoreBase(): StoreBaseClass {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require("express-session") as { Store?: unknown };
    if (typeof mod.Store === "function") return mod.Store as StoreBaseClass;
  } catch {
    // Not installed.
  }
  return EventEmitter;
}

export const StoreBase: StoreBaseClass = loadStoreBase();
