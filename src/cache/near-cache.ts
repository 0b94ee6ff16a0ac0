import { randomBytes } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { silentLogger, type Logger } from "../logger";
import { isCluster } from "./is-cluster";
import { noopCacheMetrics, type CacheMetrics } from "./metrics";
import { InMemorySessionCache } from "./memory";
import { NoOpSessionCache } from "./noop";
import type { RedisSessionCache } from "./redis";
import type { IndexedSession, Session, SessionCache } from "./types";

/** How often a near-cache pings its subscriber unless told otherwise (the factory pings more often with a short command timeout). */
export const DEFAULT_PING_INTERVAL_MS = 1000;

/** Options of the near-cache. */
export interface NearCacheOptions {
  /** The Redis backend this layer sits on; its client becomes the tracked data connection. */
  remote: RedisSessionCache;
  /**
   * Builds the dedicated subscriber connection (same server as `remote.client`, `protocol: 2`: ioredis 6
   * drops RESP3 invalidation pushes, but a RESP2 subscriber gets them as pub/sub messages). Only the
   * factory builds clients, so it hands this in. Not called when `enabled` is false or on a Cluster.
   */
  createSubscriber: () => Redis;
  /** False: the NoOpSessionCache takes the local position (every read goes to Redis). @default true */
  enabled?: boolean;
  /** Upper bound of the life of a local entry, whatever the key's TTL. @default 60_000 */
  maxAgeMs?: number;
  /** Most entries kept locally (LRU). @default 100_000 */
  maxEntries?: number;
  /** How often the subscriber is pinged, to notice a silently dead connection. @default DEFAULT_PING_INTERVAL_MS */
  pingIntervalMs?: number;
  /**
   * Local entries are served only while the subscriber has been heard from (a ping reply or an
   * invalidation) within this time; past it every read goes to Redis. A frozen Redis (process stopped,
   * sockets open) thus stops local hits this long after its last reply, instead of after a failed ping.
   * Keep it above `pingIntervalMs`. The factory sets it to the command timeout. @default 3 x pingIntervalMs
   */
  maxSilenceMs?: number;
  /** Where the near-cache closes its subscriber on close(). @default true */
  ownsSubscriber?: boolean;
  /** @default a silent logger */
  logger?: Logger;
  /** Where hits, misses, invalidations and bypass time are counted. @default noopCacheMetrics */
  metrics?: CacheMetrics;
}

const CHANNEL = "__redis__:invalidate";

/** A read through to Redis; `dirty` once an invalidation of its id (or a reset) came in meanwhile. */
interface PendingRead {
  dirty: boolean;
  readonly epoch: number;
  promise: Promise<Session | null>;
}

type TrackingState = "starting" | "up" | "down" | "off";

/**
 * A per-process layer over the Redis backend, kept coherent by Redis server-assisted invalidation:
 * the data connection runs `CLIENT TRACKING ON REDIRECT <subscriber id> BCAST PREFIX <session prefix>`,
 * and a dedicated RESP2 subscriber receives every write, delete, expiry and flush of a session key on
 * `__redis__:invalidate`. Local entries live min(remaining key TTL, `maxAgeMs`).
 *
 * Whenever tracking is not known to be in place (start-up, either connection closed or reconnected,
 * a ping of the subscriber failed), the local layer is emptied and bypassed: every read goes to Redis
 * until tracking is re-established. A server that refuses CLIENT TRACKING (or Redis Cluster) leaves the
 * near-cache off, with one log line; everything else works through Redis.
 */
export class NearCache implements SessionCache {
  readonly name: string;
  readonly local: SessionCache;
  readonly remote: RedisSessionCache;
  private readonly data: Redis | Cluster;
  private readonly createSubscriber: () => Redis;
  private readonly maxAgeMs: number;
  private readonly pingIntervalMs: number;
  private readonly maxSilenceMs: number;
  /** When the subscriber last answered or delivered a message (epoch ms). */
  private lastHeardAt = 0;
  private readonly ownsSubscriber: boolean;
  private readonly logger: Logger;
  private readonly prefix: string;
  private sub: Redis | undefined;
  /** The subscriber's CLIENT ID on its current connection, once it is subscribed. */
  private subId: number | undefined;
  /** The subscriber's connection name: proves the data connection sees it on the same server. */
  private subName = "";
  private state: TrackingState = "starting";
  /** Bumped by every reset: a read that started before it never stores its reply. */
  private epoch = 0;
  /** Bumped by every loss of a connection: an establishment that overlaps one does not count. */
  private losses = 0;
  /** Bumped when the subscriber's connection closes: its CLIENT ID is gone with it. */
  private subConnections = 0;
  private downSince = Date.now();
  private readonly pending = new Map<string, PendingRead>();
  private pingTimer: NodeJS.Timeout | undefined;
  private pinging = false;
  private closed = false;
  private readonly listeners: Array<() => void> = [];
  private readonly metrics: CacheMetrics;

  constructor(o: NearCacheOptions) {
    this.metrics = o.metrics ?? noopCacheMetrics;
    this.remote = o.remote;
    this.data = o.remote.client;
    this.name = `near(${o.remote.name})`;
    this.createSubscriber = o.createSubscriber;
    this.maxAgeMs = o.maxAgeMs ?? 60_000;
    this.pingIntervalMs = o.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    this.maxSilenceMs = o.maxSilenceMs ?? 3 * this.pingIntervalMs;
    this.ownsSubscriber = o.ownsSubscriber ?? true;
    this.logger = o.logger ?? silentLogger();
    this.prefix = o.remote.keys.sessionPrefix;
    const enabled = o.enabled ?? true;
    this.local = enabled ? new InMemorySessionCache({ maxSessions: o.maxEntries ?? 100_000 }) : new NoOpSessionCache();
    if (!enabled) {
      this.state = "off";
    } else if (isCluster(this.data)) {
      // Tracking per master would need one subscriber per master and a re-sync on every slot move.
      this.turnOff("Redis Cluster");
    } else {
      this.start(this.data);
    }
  }

  /** True while local entries are served (tracking established). For tests and /metrics. */
  get tracking(): boolean {
    return this.state === "up";
  }

  async get(id: string): Promise<Session | null> {
    if (this.state === "off") return this.remote.get(id);
    if (this.state === "up" && Date.now() - this.lastHeardAt <= this.maxSilenceMs) {
      const hit = await this.local.get(id);
      if (hit !== null) {
        this.metrics.nearCacheHits.inc();
        return hit;
      }
      this.metrics.nearCacheMisses.inc();
      // Collapse concurrent misses; only while tracking is up, where a later invalidation of the id
      // detaches the read (see evict) so no caller joins a read older than an invalidation it knows of.
      const inflight = this.pending.get(id);
      if (inflight !== undefined && !inflight.dirty) return inflight.promise;
    }
    return this.readThrough(id);
  }

  async set(id: string, session: Session, ttlSeconds: number): Promise<void> {
    this.evict(id);
    try {
      await this.remote.set(id, session, ttlSeconds);
    } finally {
      this.evict(id);
    }
  }

  async update(id: string, session: Session, ttlSeconds: number): Promise<boolean> {
    this.evict(id);
    try {
      return await this.remote.update(id, session, ttlSeconds);
    } finally {
      this.evict(id);
    }
  }

  async invalidate(id: string): Promise<void> {
    this.evict(id);
    try {
      await this.remote.invalidate(id);
    } finally {
      this.evict(id);
    }
  }

  listUserSessions(username: string): Promise<IndexedSession[]> {
    return this.remote.listUserSessions(username);
  }

  async invalidateUser(username: string): Promise<number> {
    this.reset();
    try {
      return await this.remote.invalidateUser(username);
    } finally {
      this.reset();
    }
  }

  async clear(): Promise<void> {
    this.reset();
    try {
      await this.remote.clear();
    } finally {
      this.reset();
    }
  }

  ping(): Promise<void> {
    return this.remote.ping();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.state !== "off") this.goDown("closed", false);
    this.state = "off";
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    for (const remove of this.listeners) remove();
    if (this.sub !== undefined && this.ownsSubscriber) this.sub.disconnect();
    await this.local.close();
    await this.remote.close();
  }

  // ---- reads ----

  private readThrough(id: string): Promise<Session | null> {
    if (this.state !== "up") return this.remote.get(id);
    // Marked pending BEFORE the GET is sent: with REDIRECT the invalidation travels on the subscriber
    // connection and may arrive before the reply it concerns.
    const read: PendingRead = { dirty: false, epoch: this.epoch, promise: Promise.resolve(null) };
    read.promise = this.fill(id, read);
    this.pending.set(id, read);
    const done = () => {
      if (this.pending.get(id) === read) this.pending.delete(id);
    };
    read.promise.then(done, done);
    return read.promise;
  }

  private async fill(id: string, read: PendingRead): Promise<Session | null> {
    const pttl = (this.data as Redis).pttl(this.prefix + id).catch(() => -2);
    const session = await this.remote.get(id);
    const ttlMs = await pttl;
    if (session === null || read.dirty || read.epoch !== this.epoch || this.state !== "up") return session;
    const keyMs = ttlMs === -1 ? this.maxAgeMs : ttlMs;
    const lifeMs = Math.min(keyMs, this.maxAgeMs, session.expiresAt - Date.now());
    if (lifeMs >= 1) await this.local.set(id, session, lifeMs / 1000);
    return session;
  }

  // ---- invalidation ----

  private evict(id: string): void {
    void this.local.invalidate(id);
    const read = this.pending.get(id);
    if (read !== undefined) {
      read.dirty = true;
      this.pending.delete(id);
    }
  }

  /** Empties the local layer and voids every read in flight. */
  private reset(): void {
    this.epoch++;
    for (const read of this.pending.values()) read.dirty = true;
    this.pending.clear();
    void this.local.clear();
  }

  private onMessage(channel: Buffer, message: Buffer[] | Buffer | null): void {
    if (channel.toString() !== CHANNEL) return;
    this.lastHeardAt = Date.now();
    this.metrics.nearCacheInvalidations.inc();
    if (message === null) {
      // The whole db was flushed.
      this.reset();
      return;
    }
    const keys = Array.isArray(message) ? message : [message];
    for (const raw of keys) {
      const key = raw.toString();
      if (key.startsWith(this.prefix)) this.evict(key.slice(this.prefix.length));
    }
  }

  // ---- tracking lifecycle ----

  private start(data: Redis): void {
    const sub = this.createSubscriber();
    this.sub = sub;
    // One CLIENT ID per subscriber connection: subscribe by hand on every 'ready' (CLIENT ID is refused
    // in RESP2 subscribed mode, and ioredis would otherwise resubscribe before we could ask).
    sub.options.autoResubscribe = false;
    const on = (emitter: Redis, event: string, fn: (...args: never[]) => void) => {
      emitter.on(event, fn as (...args: unknown[]) => void);
      this.listeners.push(() => emitter.off(event, fn as (...args: unknown[]) => void));
    };
    on(sub, "messageBuffer", (channel: Buffer, message: Buffer[] | null) => this.onMessage(channel, message));
    on(sub, "close", () => {
      this.subId = undefined;
      this.subConnections++;
      this.goDown("subscriber connection lost");
    });
    on(sub, "ready", () => void this.subscribe(sub));
    on(data, "close", () => this.goDown("data connection lost"));
    on(data, "ready", () => void this.track());
    if (sub.status === "ready") void this.subscribe(sub);
    this.pingTimer = setInterval(() => void this.pingSubscriber(), this.pingIntervalMs);
    this.pingTimer.unref();
  }

  private async subscribe(sub: Redis): Promise<void> {
    const connection = this.subConnections;
    try {
      // ioredis leaves connectionName null when unset.
      const named: unknown = sub.options.connectionName;
      const name = typeof named === "string" && named !== "" ? named : `bangui-near-${randomBytes(8).toString("hex")}`;
      if (name !== named) await sub.client("SETNAME", name);
      const id = Number(await sub.client("ID"));
      await sub.subscribe(CHANNEL);
      if (this.closed || connection !== this.subConnections) return;
      this.subId = id;
      this.subName = name;
    } catch (err) {
      this.onSetupError(err);
      return;
    }
    await this.track();
  }

  /** (Re)points the data connection's tracking at the subscriber; tracking lives per connection. */
  private async track(): Promise<void> {
    const data = this.data as Redis;
    const subId = this.subId;
    if (this.closed || this.state === "off" || subId === undefined || data.status !== "ready") return;
    const losses = this.losses;
    try {
      // OFF first: ON again with the same prefix is refused as an overlap.
      await data.call("CLIENT", "TRACKING", "OFF");
      await data.call("CLIENT", "TRACKING", "ON", "REDIRECT", String(subId), "BCAST", "PREFIX", this.prefix);
    } catch (err) {
      if (err instanceof Error && /redirect to does not exist/i.test(err.message)) this.retryElsewhere();
      else this.onSetupError(err);
      return;
    }
    // After a Sentinel failover the two connections may briefly reach different servers, where the
    // REDIRECT id would name nobody (or someone else): check that the data connection sees our subscriber.
    let seen = true;
    try {
      seen = String(await data.call("CLIENT", "LIST", "ID", String(subId))).includes(` name=${this.subName} `);
    } catch (err) {
      // Redis < 6.2 has no CLIENT LIST ID: nothing to check with, tracking stands.
      if (!(err instanceof Error && err.name === "ReplyError")) {
        this.goDown("tracking setup failed");
        return;
      }
    }
    if (!seen) {
      this.retryElsewhere();
      return;
    }
    if (this.closed || losses !== this.losses || this.subId !== subId || this.isOff()) return;
    this.reset();
    if (this.state !== "starting") this.metrics.nearCacheBypassSeconds.inc((Date.now() - this.downSince) / 1000);
    this.lastHeardAt = Date.now();
    this.state = "up";
    this.logger.info({ prefix: this.prefix }, "near-cache tracking established");
  }

  /** The two connections reach different servers: stay bypassed, reconnect the subscriber a bit later. */
  private retryElsewhere(): void {
    this.subId = undefined;
    this.goDown("subscriber and data connection reach different servers");
    const sub = this.sub;
    setTimeout(() => {
      if (!this.closed && !this.isOff()) sub?.disconnect(true);
    }, 200).unref();
  }

  private onSetupError(err: unknown): void {
    if (this.closed) return;
    if (err instanceof Error && err.name === "ReplyError") {
      this.turnOff(`the Redis server refused client tracking (${err.message.slice(0, 120)})`);
      return;
    }
    // A connection problem: the next 'ready' tries again.
    this.goDown("tracking setup failed");
  }

  private goDown(reason: string, log = true): void {
    this.losses++;
    this.reset();
    if (this.state === "up") {
      this.state = "down";
      this.downSince = Date.now();
      if (log) this.logger.warn({ reason }, "near-cache bypassed until tracking is re-established");
    }
  }

  private turnOff(reason: string): void {
    this.reset();
    this.state = "off";
    this.logger.warn({ reason }, "near-cache off: every session read goes to Redis");
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    if (this.sub !== undefined && this.ownsSubscriber) this.sub.disconnect();
  }

  /** A method, so that TypeScript does not narrow the state across awaits. */
  private isOff(): boolean {
    return this.state === "off";
  }

  private async pingSubscriber(): Promise<void> {
    const sub = this.sub;
    if (sub === undefined || this.pinging || this.state !== "up") return;
    this.pinging = true;
    try {
      await sub.ping();
      this.lastHeardAt = Date.now();
    } catch {
      if (this.closed || this.isOff()) return;
      this.subId = undefined;
      this.goDown("subscriber did not answer a ping");
      // Drop the connection: its 'ready' after the reconnect re-establishes tracking with a new id.
      sub.disconnect(true);
    } finally {
      this.pinging = false;
    }
  }
}
