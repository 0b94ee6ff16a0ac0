import { LRUCache } from "lru-cache";
import { noopCacheMetrics, type CacheMetrics } from "./metrics";
import { sha256Hex } from "./keys";
import { SessionSchema, type IndexedSession, type Session, type SessionCache } from "./types";

/** Options of the process-local backend. */
export interface InMemorySessionCacheOptions {
  /** Most sessions kept; the least recently used is evicted beyond it. @default 100_000 */
  maxSessions?: number;
  /** Epoch milliseconds. @default Date.now */
  clock?: () => number;
  /** Where latency and corrupt values are counted. @default noopCacheMetrics */
  metrics?: CacheMetrics;
}

interface Entry {
  json: string;
  username: string;
}

/**
 * Process-local session cache: per-entry TTL and an LRU size bound (lru-cache), with an in-memory twin
 * of the per-user index (bounded by the same maximum). Values are stored as JSON and parsed on read, so
 * a caller mutating its object never changes what is stored (same behaviour as Redis).
 */
export class InMemorySessionCache implements SessionCache {
  readonly name = "memory";
  private readonly clock: () => number;
  private readonly sessions: LRUCache<string, Entry>;
  /** sha256(username) -> session ids. */
  private readonly users: LRUCache<string, Set<string>>;
  private closed = false;
  private readonly metrics: CacheMetrics;

  constructor(options: InMemorySessionCacheOptions = {}) {
    this.metrics = options.metrics ?? noopCacheMetrics;
    const max = options.maxSessions ?? 100_000;
    this.clock = options.clock ?? Date.now;
    const perf = { now: () => this.clock() };
    this.sessions = new LRUCache<string, Entry>({
      max,
      ttlAutopurge: false,
      allowStale: false,
      // 0: ask the clock on every read (the default caches it for 1 ms with a real timer).
      ttlResolution: 0,
      perf,
      dispose: (entry, id, reason) => {
        if (reason === "set") return;
        this.unindex(entry.username, id);
      },
    });
    this.users = new LRUCache<string, Set<string>>({ max });
  }

  async get(id: string): Promise<Session | null> {
    const end = this.metrics.cacheLatency.startTimer({ backend: this.name, op: "get" });
    try {
      const entry = this.sessions.get(id);
      if (entry === undefined) return null;
      const parsed = SessionSchema.safeParse(JSON.parse(entry.json));
      if (!parsed.success || parsed.data.expiresAt <= this.clock()) {
        if (!parsed.success) this.metrics.cacheCorruptValues.inc({ backend: this.name });
        this.sessions.delete(id);
        return null;
      }
      return parsed.data;
    } finally {
      end();
    }
  }

  async set(id: string, session: Session, ttlSeconds: number): Promise<void> {
    const end = this.metrics.cacheLatency.startTimer({ backend: this.name, op: "set" });
    try {
      const valid = SessionSchema.parse(session);
      const old = this.sessions.peek(id);
      if (old !== undefined && old.username !== valid.username) this.unindex(old.username, id);
      this.sessions.set(id, { json: JSON.stringify(valid), username: valid.username }, { ttl: ttlMs(ttlSeconds) });
      const key = sha256Hex(valid.username);
      let ids = this.users.get(key);
      if (ids === undefined) {
        ids = new Set();
        this.users.set(key, ids);
      }
      ids.add(id);
    } finally {
      end();
    }
  }

  async update(id: string, session: Session, ttlSeconds: number): Promise<boolean> {
    if (this.sessions.get(id) === undefined) return false;
    await this.set(id, session, ttlSeconds);
    return true;
  }

  async invalidate(id: string): Promise<void> {
    this.sessions.delete(id);
  }

  async listUserSessions(username: string): Promise<IndexedSession[]> {
    const ids = this.users.get(sha256Hex(username));
    if (ids === undefined) return [];
    const out: IndexedSession[] = [];
    for (const id of [...ids]) {
      const session = await this.get(id);
      if (session === null) ids.delete(id);
      else if (session.username === username) out.push({ id, session });
    }
    return out;
  }

  async invalidateUser(username: string): Promise<number> {
    const key = sha256Hex(username);
    const ids = this.users.get(key);
    if (ids === undefined) return 0;
    let removed = 0;
    // Same semantics as Redis: remove the ids read, never the index as a whole (dispose unindexes each).
    for (const id of [...ids]) {
      const entry = this.sessions.peek(id);
      if (entry !== undefined && entry.username === username) {
        if (this.sessions.delete(id)) removed++;
      } else {
        ids.delete(id);
      }
    }
    if (ids.size === 0) this.users.delete(key);
    return removed;
  }

  async clear(): Promise<void> {
    this.sessions.clear();
    this.users.clear();
  }

  async ping(): Promise<void> {
    // Always answers: the store is this process.
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sessions.clear();
    this.users.clear();
  }

  /** Remaining lifetime of a stored session in ms (0 when there is none): the ipc backend's near-cache bound. */
  remainingTtlMs(id: string): number {
    if (!this.sessions.has(id)) return 0;
    return Math.max(0, this.sessions.getRemainingTTL(id));
  }

  /** Every stored session with its remaining lifetime (for `BANGUI_SESSIONS_FILE`); expired ones left out. */
  snapshot(): Array<{ id: string; session: Session; ttlMs: number }> {
    const out: Array<{ id: string; session: Session; ttlMs: number }> = [];
    const now = this.clock();
    for (const [id, entry] of this.sessions.entries()) {
      const ttlMs = this.sessions.getRemainingTTL(id);
      const parsed = SessionSchema.safeParse(JSON.parse(entry.json));
      if (!parsed.success || ttlMs <= 0 || parsed.data.expiresAt <= now) continue;
      out.push({ id, session: parsed.data, ttlMs });
    }
    return out;
  }

  private unindex(username: string, id: string): void {
    const key = sha256Hex(username);
    const ids = this.users.peek(key);
    if (ids === undefined) return;
    ids.delete(id);
    if (ids.size === 0) this.users.delete(key);
  }
}

function ttlMs(ttlSeconds: number): number {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new RangeError("ttlSeconds must be a positive number");
  return Math.max(1, Math.round(ttlSeconds * 1000));
}
