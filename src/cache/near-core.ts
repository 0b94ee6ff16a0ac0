/**
 * The near-cache machinery, for any JSON value stored under a key prefix: a per-process LRU of validated,
 * frozen values kept coherent by Redis server-assisted invalidation (see `TrackingChannel`), with
 * pending-read epochs (a read that an invalidation overtook never stores its reply), collapsed concurrent
 * misses, and the bypass rules (no local hit while tracking is not known to be in place, nor while the
 * subscriber is silent, nor, with `freshness: "strict"`, before a subscriber round trip that started after
 * the request). The session near-cache (`NearCache`) and the express-session store both sit on it.
 *
 * @example
 * ```ts
 * import Redis from "ioredis";
 * import { z } from "zod";
 * import { NearCacheCore } from "./near-core";
 *
 * const SessionData = z.object({ cookie: z.object({}).passthrough() }).passthrough();
 * const client = new Redis(url, { commandTimeout: 500, enableOfflineQueue: false });
 * const near = new NearCacheCore({
 *   client,                       // the data connection (Redis or Cluster): its reads fill the cache
 *   keyPrefix: "sess:",           // every key this cache serves is `sess:<id>`
 *   // RESP2, same server as `node` (on a Cluster: the master `node` names; standalone: undefined)
 *   createSubscriber: (node) => new Redis({ ...(node ?? { host, port }), protocol: 2 }),
 *   // a value as stored in Redis -> the validated value, or null (unusable: count it, delete it)
 *   parse: (raw) => {
 *     const r = SessionData.safeParse(JSON.parse(raw));
 *     return r.success ? r.data : null;
 *   },
 * });
 * const data = await near.get(hashedSid);           // a local hit (no round trip) or GET + parse + fill
 * await near.write(hashedSid, () => client.set("sess:" + hashedSid, json, "PX", ttlMs)); // evicts around it
 * near.evict(hashedSid);                            // or by hand, before and after a write of your own
 * await near.close();                               // closes the subscriber(s), not `client`
 * ```
 * Values returned are deeply frozen and shared between callers: copy before changing one
 * (`structuredClone(value)`), e.g. before handing it to express-session, which assigns `sess.cookie`.
 */
import type { Cluster, Redis } from "ioredis";
import { LRUCache } from "lru-cache";
import { silentLogger, type Logger } from "../logger";
import { ClusterChannels, SingleChannel, type ChannelRouter } from "./channel-router";
import { isCluster } from "./is-cluster";
import { TrackingChannel, type TrackingMode } from "./tracking-channel";

export type { TrackingMode } from "./tracking-channel";

/** How often the subscriber is pinged unless told otherwise. */
export const DEFAULT_PING_INTERVAL_MS = 1000;

/**
 * `"strict"`: a local hit is served only after a subscriber PING sent after the request arrived was
 * answered (batched: one PING in flight serves every request that arrived before it was sent), so a
 * write that completed before the request is never missed. `"bounded"`: hits are served while a PING
 * answered within `maxSilenceMs` was sent, so a write is seen locally at most `maxSilenceMs` after it.
 */
export type NearFreshness = "strict" | "bounded";

/** Counters a user of the core may want (all optional). */
export interface NearCacheCounters {
  hit?(): void;
  miss?(): void;
  /** Invalidation messages received (one per message, whatever its number of keys). */
  invalidation?(): void;
  /** Tracking came back after this long bypassed. */
  bypassed?(seconds: number): void;
}

/** Options of {@link NearCacheCore}. */
export interface NearCacheCoreOptions<T> {
  /** The data connection. Every read that fills the local layer goes through it (it is the one tracked). */
  client: Redis | Cluster;
  /** Prefix of the keys served: `get(id)` reads `keyPrefix + id`. Tracking covers this prefix. */
  keyPrefix: string;
  /**
   * Builds a dedicated subscriber (`protocol: 2`; ioredis 6 drops RESP3 invalidation pushes, but a RESP2
   * subscriber gets them as pub/sub messages) on the server of the data connection (`node` undefined) or
   * on the Cluster master `node`. Not called when `enabled` is false.
   */
  createSubscriber: (node?: { host: string; port: number }) => Redis;
  /**
   * The stored string -> the validated value, or null when it is unusable (the caller's own rules: count
   * it, delete it). Used by the default loader (`GET keyPrefix+id`). Give either `parse` or `load`.
   */
  parse?: (raw: string, id: string) => T | null | Promise<T | null>;
  /** Replaces the default loader (GET + parse): reads `keyPrefix + id` through `client`. */
  load?: (id: string) => Promise<T | null>;
  /** The value's own remaining life in ms (e.g. its expiresAt - now); the entry never outlives it. @default none */
  lifeMsOf?: (value: T) => number;
  /** False: nothing is kept locally, no subscriber opened, every get reads through. @default true */
  enabled?: boolean;
  /** Upper bound of the life of a local entry, whatever the key's TTL. @default 60_000 */
  maxAgeMs?: number;
  /** Most entries kept locally (LRU). @default 100_000 */
  maxEntries?: number;
  /** @default "strict" */
  freshness?: NearFreshness;
  /** @default "default" (only keys this process read are announced to it: measured in bench/near.js) */
  trackingMode?: TrackingMode;
  /** How often the subscriber is pinged (liveness, and freshness in "bounded"). @default DEFAULT_PING_INTERVAL_MS */
  pingIntervalMs?: number;
  /**
   * No local hit unless a subscriber PING sent within this time was answered: a frozen Redis (stopped,
   * sockets open) stops local hits this long after, in either freshness mode. Keep it above
   * `pingIntervalMs`. @default 3 x pingIntervalMs
   */
  maxSilenceMs?: number;
  /** close() disconnects the subscriber(s). @default true */
  ownsSubscriber?: boolean;
  /** Deep-freeze values (they are shared between callers). @default true */
  freeze?: boolean;
  /** @default a silent logger */
  logger?: Logger;
  /** @default none */
  counters?: NearCacheCounters;
}

interface Entry<T> {
  readonly value: T;
  readonly expiresAt: number;
  /** The channel of the server the value was read from: served only while that server owns the key. */
  readonly channel: TrackingChannel;
}

/** A read through to Redis; `dirty` once an invalidation of its id (or a reset) came in meanwhile. */
interface PendingRead<T> {
  dirty: boolean;
  promise: Promise<T | null>;
}

/** See the file comment. */
export class NearCacheCore<T> {
  private readonly o: NearCacheCoreOptions<T>;
  private readonly prefix: string;
  private readonly maxAgeMs: number;
  private readonly strict: boolean;
  private readonly freeze: boolean;
  private readonly logger: Logger;
  private readonly entries: LRUCache<string, Entry<T>> | undefined;
  private readonly pending = new Map<string, PendingRead<T>>();
  private readonly router: ChannelRouter | undefined;
  /** What this instance counted (whatever metrics it was given): local hits, reads through, invalidation messages. */
  readonly stats = { hits: 0, misses: 0, invalidations: 0 };
  /** Bumped by every reset: a read that started before it never stores its reply. */
  private generation = 0;
  private closed = false;

  constructor(o: NearCacheCoreOptions<T>) {
    if (o.parse === undefined && o.load === undefined) throw new TypeError("NearCacheCore needs parse or load");
    this.o = o;
    this.prefix = o.keyPrefix;
    this.maxAgeMs = o.maxAgeMs ?? 60_000;
    this.strict = (o.freshness ?? "strict") === "strict";
    this.freeze = o.freeze ?? true;
    this.logger = o.logger ?? silentLogger();
    if (o.enabled === false) return;
    this.entries = new LRUCache<string, Entry<T>>({ max: o.maxEntries ?? 100_000 });
    const pingIntervalMs = o.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    let refused = false;
    const open = (data: Redis, node?: { host: string; port: number }) =>
      new TrackingChannel({
        data,
        createSubscriber: () => o.createSubscriber(node),
        prefix: this.prefix,
        mode: o.trackingMode ?? "default",
        pingIntervalMs,
        maxSilenceMs: o.maxSilenceMs ?? 3 * pingIntervalMs,
        ownsSubscriber: o.ownsSubscriber ?? true,
        logger: this.logger,
        onInvalidate: (keys) => this.onInvalidate(keys),
        onReset: () => this.reset(),
        onUp: (ms) => o.counters?.bypassed?.(ms / 1000),
        onRefused: (reason) => {
          if (refused) return;
          refused = true;
          this.logger.warn({ reason }, "near-cache off: every read goes to Redis");
        },
      });
    const client = o.client;
    this.router = isCluster(client)
      ? new ClusterChannels(client, open, () => this.reset())
      : new SingleChannel(open(client));
  }

  /** True while tracking is established (local entries may be served). */
  get tracking(): boolean {
    return this.router?.up === true;
  }

  /** The value under `keyPrefix + id`: a local hit when one may be served, else a read through Redis. */
  async get(id: string): Promise<T | null> {
    const router = this.router;
    if (router === undefined || !router.serving) return this.loadFrozen(id);
    const ch = router.channelFor(this.prefix + id);
    if (ch === undefined) return this.loadFrozen(id);
    if (this.entries!.has(id) || this.pending.has(id)) {
      if (this.strict && !(await router.barrier())) return this.loadFrozen(id);
      const entry = this.entries!.get(id);
      if (entry !== undefined && entry.channel === router.channelFor(this.prefix + id) && router.up) {
        if (entry.expiresAt > Date.now()) {
          this.stats.hits++;
          this.o.counters?.hit?.();
          return entry.value;
        }
        this.entries!.delete(id);
      }
      this.stats.misses++;
      this.o.counters?.miss?.();
      // Join a read in flight only when no invalidation of the id came in since it started (after the
      // barrier in "strict": none of a write that completed before this request).
      const inflight = this.pending.get(id);
      if (inflight !== undefined && !inflight.dirty) return inflight.promise;
    } else {
      this.stats.misses++;
      this.o.counters?.miss?.();
    }
    return this.readThrough(id, ch);
  }

  /** Forgets `id` locally and voids reads of it in flight. Call it before and after writing it. */
  evict(id: string): void {
    this.entries?.delete(id);
    const read = this.pending.get(id);
    if (read !== undefined) {
      read.dirty = true;
      this.pending.delete(id);
    }
  }

  /** Runs a write of `id` with the local entry evicted before and after it. */
  async write<R>(id: string, fn: () => Promise<R>): Promise<R> {
    this.evict(id);
    try {
      return await fn();
    } finally {
      this.evict(id);
    }
  }

  /** Runs a write of many keys (or unknown ones) with the whole local layer emptied before and after. */
  async writeAll<R>(fn: () => Promise<R>): Promise<R> {
    this.reset();
    try {
      return await fn();
    } finally {
      this.reset();
    }
  }

  /** Empties the local layer and voids every read in flight. */
  reset(): void {
    this.generation++;
    for (const read of this.pending.values()) read.dirty = true;
    this.pending.clear();
    this.entries?.clear();
  }

  /** Closes the subscriber(s) and timers; not the client. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.router?.close();
    this.reset();
  }

  private readThrough(id: string, ch: TrackingChannel): Promise<T | null> {
    // Marked pending BEFORE the GET is sent: with REDIRECT the invalidation travels on the subscriber
    // connection and may arrive before the reply it concerns.
    const read: PendingRead<T> = { dirty: false, promise: Promise.resolve(null) };
    read.promise = this.fill(id, read, ch, this.generation);
    this.pending.set(id, read);
    const done = () => {
      if (this.pending.get(id) === read) this.pending.delete(id);
    };
    read.promise.then(done, done);
    return read.promise;
  }

  private async fill(id: string, read: PendingRead<T>, ch: TrackingChannel, generation: number): Promise<T | null> {
    const pttl = this.o.client.pttl(this.prefix + id).catch(() => -2);
    const value = await this.loadFrozen(id);
    const ttlMs = await pttl;
    // Every reset (any channel down or up, a topology change, a flush) bumps the generation; a key whose
    // owner changed meanwhile (slot moved) is not stored either.
    const router = this.router!;
    if (value === null || read.dirty || generation !== this.generation || !router.up || router.channelFor(this.prefix + id) !== ch) {
      return value;
    }
    const ownMs = this.o.lifeMsOf?.(value) ?? Infinity;
    const lifeMs = Math.min(ttlMs === -1 ? this.maxAgeMs : ttlMs, this.maxAgeMs, ownMs);
    if (lifeMs >= 1 && !this.closed) this.entries!.set(id, { value, expiresAt: Date.now() + lifeMs, channel: ch });
    return value;
  }

  private async loadFrozen(id: string): Promise<T | null> {
    let value: T | null;
    if (this.o.load !== undefined) {
      value = await this.o.load(id);
    } else {
      const raw = await this.o.client.get(this.prefix + id);
      value = raw === null ? null : await this.o.parse!(raw, id);
    }
    return value !== null && this.freeze ? deepFreeze(value) : value;
  }

  private onInvalidate(keys: string[] | null): void {
    this.stats.invalidations++;
    this.o.counters?.invalidation?.();
    if (keys === null) {
      // The whole db was flushed.
      this.reset();
      return;
    }
    for (const key of keys) this.evict(key.slice(this.prefix.length));
  }
}

/** Freezes a JSON-like value and everything it holds. */
export function deepFreeze<V>(value: V): V {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}
