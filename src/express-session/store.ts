import type { Cluster, Redis } from "ioredis";
import { LRUCache } from "lru-cache";
import { isCluster } from "../cache/is-cluster";
import { createStoreKeySpace, sha256Hex, type StoreKeySpace } from "../cache/keys";
import { createPromCacheMetrics, noopCacheMetrics, type CacheMetrics } from "../cache/metrics";
import { DEFAULT_PING_INTERVAL_MS, NearCacheCore } from "../cache/near-core";
import { toBackendError } from "../cache/redis-errors";
import { silentLogger, type Logger } from "../logger";
import { settle, withDeadline, type Callback } from "./callbacks";
import { StoreBase, type RedisSessionStoreOptions, type UserSession } from "./options";
import { scanKeys, unlinkOnNode } from "./scan";
import { validateStored, type SessionInput, type Stored, type StoreSessionData } from "./value";

export type { SessionInput, StoreSessionData } from "./value";
export type { RedisSessionStoreOptions, UserSession } from "./options";

/** What express-session's `Store` adds at run time (present when express-session is installed). */
export interface RedisSessionStore {
  regenerate(req: unknown, callback: (err?: unknown) => unknown): void;
  load(sid: string, callback: (err: unknown, session?: never) => unknown): void;
  createSession(req: never, session: never): never;
}

/**
 * An express-session `Store` on ioredis (standalone, Sentinel, Cluster). Keys are
 * `<prefix><sha256(sid)>`; a value that does not parse is no session (removed, counted); every call
 * rejects within `commandTimeoutMs` when Redis cannot answer; each callback is called exactly once; every
 * method also returns a promise when called without a callback.
 * @example
 * app.use(session({ store: new RedisSessionStore({ client: new Redis(url, { enableOfflineQueue: false, commandTimeout: 500 }) }),
 *   secret, resave: false, saveUninitialized: false }));
 */
export class RedisSessionStore extends StoreBase {
  readonly client: Redis | Cluster;
  readonly keys: StoreKeySpace;
  private readonly ttlMs: number;
  private readonly touchAfterFraction: number;
  private readonly userOf: ((session: StoreSessionData) => string | undefined) | undefined;
  private readonly timeoutMs: number;
  private readonly metrics: CacheMetrics;
  private readonly logger: Logger;
  private readonly near: NearCacheCore<Stored>;
  /** Expiry (epoch ms) of each session as this process last wrote or read it: touch's rate limit. */
  private readonly expiries = new LRUCache<string, number>({ max: 100_000 });

  constructor(o: RedisSessionStoreOptions) {
    super();
    this.client = o.client;
    this.keys = createStoreKeySpace(o.prefix ?? "sess:");
    this.ttlMs = Math.round((o.ttlSeconds ?? 86_400) * 1000);
    if (!(this.ttlMs > 0)) throw new RangeError("RedisSessionStore: ttlSeconds must be positive");
    this.touchAfterFraction = o.touchAfterFraction ?? 0.1;
    this.userOf = o.userOf;
    const clientTimeout = isCluster(o.client) ? o.client.options.redisOptions?.commandTimeout : o.client.options.commandTimeout;
    this.timeoutMs = o.commandTimeoutMs ?? clientTimeout ?? 1000;
    this.metrics = o.registry !== undefined ? createPromCacheMetrics(o.registry) : noopCacheMetrics;
    this.logger = o.logger ?? silentLogger();
    const client = o.client;
    const metrics = this.metrics;
    this.near = new NearCacheCore<Stored>({
      client,
      keyPrefix: this.keys.prefix,
      createSubscriber: o.createSubscriber ?? (() => this.duplicateSubscriber(client as Redis)),
      load: (hash) => this.readStored(hash),
      lifeMsOf: (stored) => (stored.expiresAt === undefined ? Infinity : stored.expiresAt - Date.now()),
      enabled: o.nearCache ?? true,
      maxAgeMs: o.nearCacheMaxAgeMs ?? 60_000,
      maxEntries: o.nearCacheMaxEntries ?? 10_000,
      freshness: o.freshness ?? "bounded",
      pingIntervalMs: Math.max(50, Math.min(DEFAULT_PING_INTERVAL_MS, Math.floor(this.timeoutMs / 3))),
      maxSilenceMs: this.timeoutMs,
      logger: this.logger,
      counters: {
        hit: () => metrics.nearCacheHits.inc(),
        miss: () => metrics.nearCacheMisses.inc(),
        invalidation: () => metrics.nearCacheInvalidations.inc(),
        bypassed: (seconds) => metrics.nearCacheBypassSeconds.inc(seconds),
      },
    });
  }

  /** True while the near-cache serves local hits (tracking established). */
  get nearCacheActive(): boolean {
    return this.near.tracking;
  }

  /** The session, or null when there is none (missing, expired, or unparsable: the last is removed). */
  get(sid: string): Promise<StoreSessionData | null>;
  get(sid: string, cb: Callback<StoreSessionData | null>): void;
  get(sid: string, cb?: Callback<StoreSessionData | null>): Promise<StoreSessionData | null> | undefined {
    return settle(
      this.op("get", async () => {
        const stored = await this.near.get(sha256Hex(sid));
        return stored === null ? null : (JSON.parse(stored.json) as StoreSessionData);
      }),
      cb,
    );
  }

  /** Stores the session until its cookie expires (else `ttlSeconds`); a past expiry removes it. */
  set(sid: string, session: SessionInput): Promise<void>;
  set(sid: string, session: SessionInput, cb: Callback<void>): void;
  set(sid: string, session: SessionInput, cb?: Callback<void>): Promise<void> | undefined {
    return settle(
      this.op("set", async () => {
        const hash = sha256Hex(sid);
        const ms = this.lifeMsOf(session);
        if (ms <= 0) return this.remove(hash);
        const key = this.keys.sessionOfHash(hash);
        const json = JSON.stringify(session);
        await this.near.write(hash, () => this.client.set(key, json, "PX", ms));
        this.expiries.set(hash, Date.now() + ms);
        const user = this.userOf?.(session as StoreSessionData);
        if (user !== undefined) {
          // After the SET: a logout-all that reads the index sees only sessions that already exist.
          const index = this.keys.userIndex(user);
          await Promise.all([
            this.client.sadd(index, hash),
            this.client.call("PEXPIRE", index, String(ms), "NX"),
            this.client.call("PEXPIRE", index, String(ms), "GT"),
          ]);
        }
      }),
      cb,
    );
  }

  /**
   * Extends an existing session's life (PEXPIRE: a destroyed session is never recreated), at most once
   * per `touchAfterFraction` of its lifetime.
   */
  touch(sid: string, session: SessionInput): Promise<void>;
  touch(sid: string, session: SessionInput, cb: Callback<void>): void;
  touch(sid: string, session: SessionInput, cb?: Callback<void>): Promise<void> | undefined {
    return settle(
      this.op("touch", async () => {
        const hash = sha256Hex(sid);
        const ms = this.lifeMsOf(session);
        if (ms <= 0) return this.remove(hash);
        const due = Date.now() + ms;
        const known = this.expiries.get(hash);
        if (known !== undefined && due - known < this.touchAfterFraction * ms) return;
        const key = this.keys.sessionOfHash(hash);
        const extended = await this.near.write(hash, () => this.client.pexpire(key, ms));
        if (extended === 1) this.expiries.set(hash, due);
        else this.expiries.delete(hash);
      }),
      cb,
    );
  }

  /** Removes the session; every process's next `get` of it misses. */
  destroy(sid: string): Promise<void>;
  destroy(sid: string, cb: Callback<void>): void;
  destroy(sid: string, cb?: Callback<void>): Promise<void> | undefined {
    return settle(this.op("destroy", () => this.remove(sha256Hex(sid))), cb);
  }

  /** Every session of the store (scans every master). Unparsable values are skipped and removed. */
  all(): Promise<StoreSessionData[]>;
  all(cb: Callback<StoreSessionData[]>): void;
  all(cb?: Callback<StoreSessionData[]>): Promise<StoreSessionData[]> | undefined {
    return settle(
      this.op("all", async () => {
        const out: StoreSessionData[] = [];
        await this.scanSessions(async (_node, hashes) => {
          const values = await Promise.all(hashes.map((h) => this.readStored(h)));
          for (const v of values) if (v !== null) out.push(JSON.parse(v.json) as StoreSessionData);
        });
        return out;
      }),
      cb,
    );
  }

  /** How many sessions the store holds (scans every master). */
  length(): Promise<number>;
  length(cb: Callback<number>): void;
  length(cb?: Callback<number>): Promise<number> | undefined {
    return settle(
      this.op("length", async () => {
        let n = 0;
        await this.scanSessions(async (_node, hashes) => {
          n += hashes.length;
        });
        return n;
      }),
      cb,
    );
  }

  /** The hashes (`sha256(sid)`, hex) of every session: never a usable session id. */
  ids(): Promise<string[]>;
  ids(cb: Callback<string[]>): void;
  ids(cb?: Callback<string[]>): Promise<string[]> | undefined {
    return settle(
      this.op("ids", async () => {
        const out: string[] = [];
        await this.scanSessions(async (_node, hashes) => {
          out.push(...hashes);
        });
        return out;
      }),
      cb,
    );
  }

  /** Removes every key of this store (its prefix only, on every master; never FLUSHDB). */
  clear(): Promise<void>;
  clear(cb: Callback<void>): void;
  clear(cb?: Callback<void>): Promise<void> | undefined {
    return settle(
      this.op("clear", () =>
        this.near.writeAll(async () => {
          const cluster = isCluster(this.client);
          await scanKeys(this.client, this.keys.pattern, async (node, keys) => {
            await unlinkOnNode(node, keys, cluster);
          });
          this.expiries.clear();
        }),
      ),
      cb,
    );
  }

  /**
   * Ends every session of `user` (needs `userOf`). Removes only the ids it read from the index: a login
   * racing it (SET, then SADD) is either read and ended, or indexed after and kept for the next call.
   * @returns how many sessions were removed.
   */
  destroyUser(user: string): Promise<number>;
  destroyUser(user: string, cb: Callback<number>): void;
  destroyUser(user: string, cb?: Callback<number>): Promise<number> | undefined {
    return settle(
      this.op("destroy_user", async () => {
        const index = this.keys.userIndex(user);
        const hashes = await this.client.smembers(index);
        if (hashes.length === 0) return 0;
        for (const h of hashes) this.near.evict(h);
        try {
          const removed = await Promise.all(hashes.map((h) => this.client.unlink(this.keys.sessionOfHash(h))));
          await this.client.srem(index, ...hashes);
          for (const h of hashes) this.expiries.delete(h);
          return removed.reduce((a, b) => a + b, 0);
        } finally {
          for (const h of hashes) this.near.evict(h);
        }
      }),
      cb,
    );
  }

  /** The live sessions of `user` (needs `userOf`); index members whose session is gone are pruned. */
  listUser(user: string): Promise<UserSession[]>;
  listUser(user: string, cb: Callback<UserSession[]>): void;
  listUser(user: string, cb?: Callback<UserSession[]>): Promise<UserSession[]> | undefined {
    return settle(
      this.op("list_user", async () => {
        const index = this.keys.userIndex(user);
        const hashes = await this.client.smembers(index);
        const values = await Promise.all(hashes.map((h) => this.readStored(h)));
        const out: UserSession[] = [];
        const stale: string[] = [];
        hashes.forEach((id, i) => {
          const v = values[i];
          if (v === null || v === undefined) stale.push(id);
          else out.push({ id, session: JSON.parse(v.json) as StoreSessionData });
        });
        if (stale.length > 0) await this.client.srem(index, ...stale);
        return out;
      }),
      cb,
    );
  }

  /** Closes the near-cache's subscriber and timers (not the client). Idempotent. */
  async close(): Promise<void> {
    await this.near.close();
  }

  // ---- internals ----

  /** The default subscriber: the client's own options, RESP2, with an 'error' listener (no unhandled event). */
  private duplicateSubscriber(client: Redis): Redis {
    const sub = client.duplicate({ protocol: 2 });
    sub.on("error", (err: Error) => this.logger.warn({ err: { name: err.name, message: err.message } }, "near-cache subscriber error"));
    return sub;
  }

  private lifeMsOf(session: SessionInput): number {
    const expires = session?.cookie?.expires;
    if (expires === undefined || expires === null) return this.ttlMs;
    const at = expires instanceof Date ? expires.getTime() : Date.parse(String(expires));
    return Number.isFinite(at) ? at - Date.now() : this.ttlMs;
  }

  private async remove(hash: string): Promise<void> {
    await this.near.write(hash, () => this.client.unlink(this.keys.sessionOfHash(hash)));
    this.expiries.delete(hash);
  }

  /** GET + validation; an unusable value is removed, counted, logged without its content. */
  private async readStored(hash: string): Promise<Stored | null> {
    const key = this.keys.sessionOfHash(hash);
    let raw: string | null;
    try {
      raw = await this.client.get(key);
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith("WRONGTYPE"))) throw err;
      raw = "";
    }
    if (raw === null) return null;
    const stored = validateStored(raw);
    if (typeof stored === "string") {
      this.metrics.cacheCorruptValues.inc({ backend: "express-session" });
      this.logger.warn({ reason: stored, keyPrefix: this.keys.prefix }, "removed an unusable session value");
      await this.client.unlink(key);
      return null;
    }
    if (stored.expiresAt !== undefined) {
      if (stored.expiresAt <= Date.now()) {
        await this.client.unlink(key);
        return null;
      }
      this.expiries.set(hash, stored.expiresAt);
    }
    return stored;
  }

  private scanSessions(batch: (node: Redis, hashes: string[]) => Promise<void>): Promise<void> {
    return scanKeys(this.client, this.keys.pattern, async (node, keys) => {
      const hashes: string[] = [];
      for (const k of keys) {
        const h = this.keys.hashOf(k);
        if (h !== undefined) hashes.push(h);
      }
      if (hashes.length > 0) await batch(node, hashes);
    });
  }

  /** Bounds the call by the command timeout; every Redis failure becomes SessionBackendUnavailableError. */
  private op<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const end = this.metrics.cacheLatency.startTimer({ backend: "express-session", op });
    return withDeadline(op, this.timeoutMs, fn).then(
      (value) => {
        end();
        return value;
      },
      (err: unknown) => {
        end();
        throw toBackendError(op, err);
      },
    );
  }
}
