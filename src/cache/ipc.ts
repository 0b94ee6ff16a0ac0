/**
 * The worker's half of the ipc session backend: a SessionCache that asks the node:cluster primary (which
 * holds the sessions, `ipc-server.ts`) over the cluster IPC channel, with a near-cache of what it read.
 * Messages and ordering: `ipc-protocol.ts`.
 */
import { LRUCache } from "lru-cache";
import type * as PromClient from "prom-client";
import { silentLogger, type Logger } from "../logger";
import { SessionBackendUnavailableError } from "./errors";
import { noopCacheMetrics, type CacheMetrics } from "./metrics";
import {
  CACHE_ACK,
  CACHE_HELLO,
  CACHE_REQUEST,
  isCacheInvalidate,
  isCacheResponse,
  type CacheOp,
  type CacheOps,
  type CacheResponse,
  type CacheResults,
} from "./ipc-protocol";
import { SessionSchema, type IndexedSession, type Session, type SessionCache } from "./types";

/** The IPC channel of a worker: `process` in a cluster worker, a ChildProcess in tests. */
export interface IpcChannel {
  send(message: unknown): unknown;
  on(event: "message", listener: (message: unknown) => void): unknown;
  off(event: "message", listener: (message: unknown) => void): unknown;
  readonly connected?: boolean;
}

/** Options of IpcSessionCache. */
export interface IpcSessionCacheOptions {
  /** @default process (the cluster IPC channel of this worker) */
  channel?: IpcChannel;
  /** A request the primary has not answered within this time rejects with SessionBackendUnavailableError. @default 1000 */
  commandTimeoutMs?: number;
  /** Keep what was read in this process (coherent: the primary waits for every worker's invalidation ack). @default true */
  nearCache?: boolean;
  /** Most sessions kept in the near-cache (LRU). @default 100_000 */
  maxEntries?: number;
  /** Upper bound of a near-cache entry's life, whatever the session's TTL. @default 60_000 */
  maxAgeMs?: number;
  /** @default a silent logger */
  logger?: Logger;
  /** Where near-cache hits and misses are counted. @default noopCacheMetrics */
  metrics?: CacheMetrics;
}

interface Pending {
  resolve: (response: CacheResponse) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** A read in flight; `dirty` once an invalidation of its id (or a reset) came in meanwhile. */
interface PendingRead {
  dirty: boolean;
  promise: Promise<Session | null>;
}

/** Request ids unique in this process: several caches may share one channel (tests). */
let nextRequestId = 1;

type RoundTrip = { startTimer(labels: { op: string }): () => unknown };
let roundTrip: RoundTrip | undefined;
/**
 * Created on first use, on prom-client's default registry (the service's): importing the cache layer
 * registers nothing and does not need prom-client; without prom-client nothing is measured.
 */
function roundTripHistogram(): RoundTrip {
  if (roundTrip !== undefined) return roundTrip;
  let prom: typeof PromClient;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    prom = require("prom-client") as typeof PromClient;
  } catch {
    roundTrip = { startTimer: () => () => undefined };
    return roundTrip;
  }
  roundTrip =
    (prom.register.getSingleMetric("bangui_ipc_roundtrip_seconds") as PromClient.Histogram<"op"> | undefined) ??
    new prom.Histogram({
      name: "bangui_ipc_roundtrip_seconds",
      help: "Round trip of a worker's session request to the primary (ipc backend)",
      labelNames: ["op"] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    });
  return roundTrip;
}

/**
 * SessionCache of a cluster worker over the primary's store. Fail closed: a request the primary does not
 * answer in time, or a closed channel, is SessionBackendUnavailableError, never "no session".
 */
export class IpcSessionCache implements SessionCache {
  readonly name = "ipc";
  /** Counters for tests and the bench: near-cache hits, misses, requests sent. */
  readonly stats = { hits: 0, misses: 0, requests: 0, invalidations: 0 };
  private readonly channel: IpcChannel;
  private readonly timeoutMs: number;
  private readonly maxAgeMs: number;
  private readonly logger: Logger;
  private readonly metrics: CacheMetrics;
  private readonly local: LRUCache<string, Session> | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly reads = new Map<string, PendingRead>();
  private readonly onMessage = (message: unknown) => this.receive(message);
  private closed = false;

  constructor(options: IpcSessionCacheOptions = {}) {
    this.channel = options.channel ?? (process as unknown as IpcChannel);
    this.timeoutMs = options.commandTimeoutMs ?? 1000;
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
    this.logger = options.logger ?? silentLogger();
    this.metrics = options.metrics ?? noopCacheMetrics;
    if (options.nearCache ?? true) {
      this.local = new LRUCache<string, Session>({ max: options.maxEntries ?? 100_000, ttlAutopurge: false, allowStale: false });
    }
    this.channel.on("message", this.onMessage);
    try {
      this.channel.send({ type: CACHE_HELLO });
    } catch (err) {
      // No channel: every request will say so.
      this.logger.warn({ err }, "the primary cannot be reached");
    }
  }

  async get(id: string): Promise<Session | null> {
    if (this.local !== undefined) {
      const hit = this.local.get(id);
      if (hit !== undefined && hit.expiresAt > Date.now()) {
        this.stats.hits++;
        this.metrics.nearCacheHits.inc();
        return { ...hit };
      }
      this.stats.misses++;
      this.metrics.nearCacheMisses.inc();
      const inflight = this.reads.get(id);
      if (inflight !== undefined && !inflight.dirty) return inflight.promise.then((s) => (s === null ? null : { ...s }));
    }
    return this.readThrough(id);
  }

  async set(id: string, session: Session, ttlSeconds: number): Promise<void> {
    this.evict(id);
    try {
      await this.call("set", [id, session, ttlSeconds]);
    } finally {
      this.evict(id);
    }
  }

  async update(id: string, session: Session, ttlSeconds: number): Promise<boolean> {
    this.evict(id);
    try {
      return await this.call("update", [id, session, ttlSeconds]);
    } finally {
      this.evict(id);
    }
  }

  async invalidate(id: string): Promise<void> {
    this.evict(id);
    try {
      await this.call("invalidate", [id]);
    } finally {
      this.evict(id);
    }
  }

  async listUserSessions(username: string): Promise<IndexedSession[]> {
    const list = await this.call("listUserSessions", [username]);
    return list.map((e) => ({ id: e.id, session: SessionSchema.parse(e.session) }));
  }

  async invalidateUser(username: string): Promise<number> {
    this.reset();
    try {
      return await this.call("invalidateUser", [username]);
    } finally {
      this.reset();
    }
  }

  async clear(): Promise<void> {
    this.reset();
    try {
      await this.call("clear", []);
    } finally {
      this.reset();
    }
  }

  async ping(): Promise<void> {
    await this.call("ping", []);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.channel.off("message", this.onMessage);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new SessionBackendUnavailableError("the ipc session cache is closed"));
      this.pending.delete(id);
    }
    this.reset();
  }

  // ---- reads ----

  private readThrough(id: string): Promise<Session | null> {
    const read: PendingRead = { dirty: false, promise: Promise.resolve(null) };
    read.promise = this.fill(id, read);
    if (this.local !== undefined) {
      this.reads.set(id, read);
      const done = () => {
        if (this.reads.get(id) === read) this.reads.delete(id);
      };
      read.promise.then(done, done);
    }
    return read.promise;
  }

  private async fill(id: string, read: PendingRead): Promise<Session | null> {
    const sentAt = Date.now();
    const response = await this.request("get", [id]);
    if (response.value === null || response.value === undefined) return null;
    const session = SessionSchema.parse(response.value);
    if (this.local !== undefined && !read.dirty && !this.closed) {
      // Counted from when the request left: the local copy never outlives the primary's.
      const lifeMs = Math.min((response.ttlMs ?? 0) - (Date.now() - sentAt), this.maxAgeMs, session.expiresAt - Date.now());
      if (lifeMs >= 1) this.local.set(id, Object.freeze({ ...session }), { ttl: Math.floor(lifeMs) });
    }
    return session;
  }

  // ---- invalidation ----

  private evict(id: string): void {
    if (this.local === undefined) return;
    this.local.delete(id);
    const read = this.reads.get(id);
    if (read !== undefined) {
      read.dirty = true;
      this.reads.delete(id);
    }
  }

  private reset(): void {
    if (this.local === undefined) return;
    for (const read of this.reads.values()) read.dirty = true;
    this.reads.clear();
    this.local.clear();
  }

  // ---- the channel ----

  private receive(message: unknown): void {
    if (isCacheResponse(message)) {
      const p = this.pending.get(message.id);
      if (p === undefined) return; // timed out already
      this.pending.delete(message.id);
      clearTimeout(p.timer);
      p.resolve(message);
      return;
    }
    if (isCacheInvalidate(message)) {
      this.stats.invalidations++;
      if (message.all === true) this.reset();
      else for (const id of message.ids ?? []) this.evict(id);
      // Acked only once dropped: the primary answers the writer after every ack.
      try {
        this.channel.send({ type: CACHE_ACK, seq: message.seq });
      } catch {
        // The primary is gone: this worker exits with it.
      }
    }
  }

  private async call<O extends CacheOp>(op: O, args: CacheOps[O]): Promise<CacheResults[O]> {
    const response = await this.request(op, args);
    return response.value as CacheResults[O];
  }

  private request<O extends CacheOp>(op: O, args: CacheOps[O]): Promise<CacheResponse> {
    if (this.closed) return Promise.reject(new SessionBackendUnavailableError("the ipc session cache is closed"));
    if (this.channel.connected === false) {
      return Promise.reject(new SessionBackendUnavailableError("the primary process holding the sessions cannot be reached"));
    }
    this.stats.requests++;
    const end = roundTripHistogram().startTimer({ op });
    const id = nextRequestId++;
    return new Promise<CacheResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        end();
        reject(new SessionBackendUnavailableError(`the primary did not answer the session request within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, {
        resolve: (response) => {
          end();
          // An error of the primary is a failed call, not an outage (a session failing the schema, a bad TTL).
          if (response.error !== undefined) reject(new Error(`the primary refused the ${op}: ${response.error}`));
          else resolve(response);
        },
        reject,
        timer,
      });
      try {
        this.channel.send({ type: CACHE_REQUEST, id, op, args });
      } catch (err) {
        this.pending.delete(id);
        clearTimeout(timer);
        end();
        reject(new SessionBackendUnavailableError("the primary process holding the sessions cannot be reached", { cause: err }));
      }
    });
  }
}
