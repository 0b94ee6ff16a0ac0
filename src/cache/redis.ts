import calculateSlot from "cluster-key-slot";
import type { Cluster, Redis } from "ioredis";
import { SessionBackendUnavailableError } from "../errors";
import { silentLogger, type Logger } from "../logger";
import { isCluster } from "./is-cluster";
import { noopCacheMetrics, type CacheMetrics } from "./metrics";
import { createKeySpace, type KeySpace } from "./keys";
import { toBackendError } from "./redis-errors";
import { SessionSchema, type IndexedSession, type Session, type SessionCache } from "./types";

/** Options of the Redis backend. */
export interface RedisSessionCacheOptions {
  /** Built by the factory (or a test); commands should fail fast (no offline queue). */
  client: Redis | Cluster;
  /** Prefix of every key this cache writes. @default "bangui:" */
  keyPrefix?: string;
  /** @default a silent logger */
  logger?: Logger;
  /** After invalidate/invalidateUser, WAIT for this many replicas ("auto": those connected now). @default 0 (off) */
  waitReplicas?: "auto" | number;
  /** No acknowledgement within it -> SessionBackendUnavailableError. @default 500 */
  waitTimeoutMs?: number;
  /**
   * A connection of its own for the removals that WAIT for replicas, and for their WAIT (WAIT counts the
   * writes of its own connection, and Redis runs nothing else from a connection while its WAIT blocks:
   * on the data connection every GET, SET and throttle call of the worker would queue behind it). Its
   * command timeout must exceed `waitTimeoutMs`. The factory builds it when WAIT is on.
   * @default the data client (only sensible with waitReplicas 0)
   */
  waitClient?: Redis | Cluster;
  /** close() quits the client (and the waitClient). @default true */
  ownsClient?: boolean;
  /** Where latency and corrupt values are counted. @default noopCacheMetrics */
  metrics?: CacheMetrics;
}

const SCAN_COUNT = 1000;
/** How long "auto" WAIT keeps expecting a replica that disconnected (beyond Sentinel's ~10 s demotion). */
const REPLICA_MEMORY_MS = 30_000;

/**
 * Sessions in Redis: `SET <prefix>s:<id> <json> PX ttl`, a per-user set at `<prefix>u:<sha256(user)>`.
 * Works unchanged on Redis Cluster: no command ever spans two keys, and `clear()` scans every master.
 */
export class RedisSessionCache implements SessionCache {
  readonly name = "redis";
  readonly client: Redis | Cluster;
  /** Where removals and their WAIT go (see `waitClient`); the data client when none was given. */
  private readonly writer: Redis | Cluster;
  readonly keys: KeySpace;
  private readonly logger: Logger;
  private readonly waitReplicas: "auto" | number;
  private readonly waitTimeoutMs: number;
  private readonly ownsClient: boolean;
  private closed = false;
  /** "auto" WAIT: most replicas lately seen on each master connection (see expectedReplicas). */
  private readonly replicasSeen = new WeakMap<Redis, { count: number; at: number }>();
  private readonly watched = new WeakSet<Redis>();
  private readonly metrics: CacheMetrics;

  constructor(o: RedisSessionCacheOptions) {
    this.metrics = o.metrics ?? noopCacheMetrics;
    this.client = o.client;
    this.writer = o.waitClient ?? o.client;
    this.keys = createKeySpace(o.keyPrefix ?? "bangui:");
    this.logger = o.logger ?? silentLogger();
    this.waitReplicas = o.waitReplicas ?? 0;
    this.waitTimeoutMs = o.waitTimeoutMs ?? 500;
    this.ownsClient = o.ownsClient ?? true;
    // Knows the replicas before the first logout (a Cluster's node connections are watched when first used).
    if (this.waitReplicas === "auto" && !isCluster(this.writer)) this.watchReplicas(this.writer);
  }

  async get(id: string): Promise<Session | null> {
    return this.op("get", () => this.read(id));
  }

  async set(id: string, session: Session, ttlSeconds: number): Promise<void> {
    const valid = SessionSchema.parse(session);
    const ms = ttlMs(ttlSeconds);
    await this.op("set", async () => {
      const key = this.keys.session(id);
      const index = this.keys.userIndex(valid.username);
      // SET first, SADD only once it is acknowledged: on a cluster the key and the index live on
      // different masters, and an id in the index whose SET is not visible yet would be pruned as stale
      // by a concurrent listUserSessions, leaving a live session no logout-all can find.
      await this.client.set(key, JSON.stringify(valid), "PX", ms);
      await Promise.all([
        this.client.sadd(index, id),
        // The index must outlive its longest session: set a TTL when none, then only ever extend it.
        this.client.call("PEXPIRE", index, String(ms), "NX"),
        this.client.call("PEXPIRE", index, String(ms), "GT"),
      ]);
    });
  }

  async update(id: string, session: Session, ttlSeconds: number): Promise<boolean> {
    const valid = SessionSchema.parse(session);
    const ms = ttlMs(ttlSeconds);
    return this.op("update", async () => {
      // XX: atomic and conditional, a request in flight never recreates a destroyed session.
      const reply = await this.client.set(this.keys.session(id), JSON.stringify(valid), "PX", ms, "XX");
      if (reply === null) return false;
      const index = this.keys.userIndex(valid.username);
      await Promise.all([
        this.client.sadd(index, id),
        this.client.call("PEXPIRE", index, String(ms), "NX"),
        this.client.call("PEXPIRE", index, String(ms), "GT"),
      ]);
      return true;
    });
  }

  async invalidate(id: string): Promise<void> {
    await this.op("invalidate", async () => {
      const key = this.keys.session(id);
      // GETDEL returns what it removed: the username names the index to take the id out of, with no
      // extra read (and no window in which a read could see the key gone but the id still listed).
      const username = usernameIn(await this.getdel(key));
      if (username !== undefined) await this.writer.srem(this.keys.userIndex(username), id);
      // After both writes: on one master the WAIT covers both (it counts every earlier write of this
      // connection). On a cluster the index may live on another master; only the removal of the session
      // is what a logout promises, a lost SREM leaves a stale id that listing prunes, so its master's
      // replicas are not waited for (a logout does not fail because of an unrelated master).
      await this.waitForReplicasOf([key]);
    });
  }

  async listUserSessions(username: string): Promise<IndexedSession[]> {
    return this.op("list", async () => {
      const index = this.keys.userIndex(username);
      const ids = await this.client.smembers(index);
      const sessions = await Promise.all(ids.map((id) => this.read(id)));
      const out: IndexedSession[] = [];
      const stale: string[] = [];
      ids.forEach((id, i) => {
        const session = sessions[i];
        if (session === null || session === undefined) stale.push(id);
        else if (session.username === username) out.push({ id, session });
      });
      if (stale.length > 0) await this.client.srem(index, ...stale);
      return out;
    });
  }

  async invalidateUser(username: string): Promise<number> {
    return this.op("invalidate_user", async () => {
      const index = this.keys.userIndex(username);
      const ids = await this.client.smembers(index);
      if (ids.length === 0) return 0;
      const removed = await Promise.all(ids.map((id) => this.writer.unlink(this.keys.session(id))));
      // Only the ids read: a login whose SADD lands after the SMEMBERS keeps its session, and that
      // session stays in the index (listed, revocable, ended by the next logout-all). UNLINKing the
      // whole index here would orphan it.
      await this.writer.srem(index, ...ids);
      await this.waitForReplicasOf([...ids.map((id) => this.keys.session(id)), index]);
      return removed.reduce((n, r) => n + r, 0);
    });
  }

  async clear(): Promise<void> {
    await this.op("clear", async () => {
      for (const node of this.masters()) {
        let cursor = "0";
        do {
          const [next, found] = await node.scan(cursor, "MATCH", this.keys.scanPattern, "COUNT", SCAN_COUNT);
          cursor = next;
          const keys = found.filter((k) => this.keys.isOwnKey(k));
          // One key per UNLINK on a cluster node would be slow; keys from one node's SCAN may still be in
          // different slots, so group by slot to stay within CROSSSLOT rules.
          if (keys.length > 0) await this.unlinkBatch(node, keys);
        } while (cursor !== "0");
      }
    });
  }

  async ping(): Promise<void> {
    await this.op("ping", async () => {
      // Both connections: ready means logouts (the WAIT connection's) can be served too, not only reads.
      await Promise.all([this.client.ping(), ...(this.writer !== this.client ? [this.writer.ping()] : [])]);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.ownsClient) return;
    const clients = this.writer === this.client ? [this.client] : [this.client, this.writer];
    await Promise.all(
      clients.map(async (c) => {
        try {
          await c.quit();
        } catch {
          c.disconnect();
        }
      }),
    );
  }

  /** GET + parse; corrupt, wrong-typed or expired values are removed and counted. Not wrapped in op(). */
  private async read(id: string): Promise<Session | null> {
    const key = this.keys.session(id);
    let raw: string | null;
    try {
      raw = await this.client.get(key);
    } catch (err) {
      if (isWrongType(err)) {
        await this.discard(key, "wrong key type");
        return null;
      }
      throw err;
    }
    if (raw === null) return null;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      await this.discard(key, "not JSON");
      return null;
    }
    const parsed = SessionSchema.safeParse(value);
    if (!parsed.success) {
      await this.discard(key, "not a session");
      return null;
    }
    if (parsed.data.expiresAt <= Date.now()) {
      await this.discard(key, "expired");
      return null;
    }
    return parsed.data;
  }

  private async discard(key: string, reason: string): Promise<void> {
    this.metrics.cacheCorruptValues.inc({ backend: this.name });
    // The value itself is never logged: it may be anything, including someone's secret.
    this.logger.warn({ reason, keyPrefix: this.keys.sessionPrefix }, "removed an unusable session value");
    await this.client.unlink(key);
  }

  private async unlinkBatch(node: Redis, keys: string[]): Promise<void> {
    if (!isCluster(this.client)) {
      await node.unlink(...keys);
      return;
    }
    const bySlot = new Map<number, string[]>();
    for (const k of keys) {
      const s = keySlot(k);
      const list = bySlot.get(s);
      if (list) list.push(k);
      else bySlot.set(s, [k]);
    }
    await Promise.all([...bySlot.values()].map((group) => node.unlink(...group)));
  }

  /** GETDEL, or UNLINK when the key is not a string (then there is no value to return). */
  private async getdel(key: string): Promise<string | null> {
    try {
      return await this.writer.getdel(key);
    } catch (err) {
      if (!isWrongType(err)) throw err;
      await this.writer.unlink(key);
      return null;
    }
  }

  /** WAIT once on every master that holds one of `keys` (on a cluster, sessions and index are apart). */
  private async waitForReplicasOf(keys: readonly string[]): Promise<void> {
    const nodesWaited = new Set<string>();
    for (const key of keys) {
      const node = this.nodeKeyFor(key);
      if (nodesWaited.has(node)) continue;
      nodesWaited.add(node);
      await this.waitForReplicas(key);
    }
  }

  private masters(): Redis[] {
    return isCluster(this.client) ? this.client.nodes("master") : [this.client];
  }

  /** "host:port" of the master the writer sends `key` to ("" on a standalone/sentinel client). */
  private nodeKeyFor(key: string): string {
    if (!isCluster(this.writer)) return "";
    return this.writer.slots[keySlot(key)]?.[0] ?? "";
  }

  /** The writer's connection that wrote `key`: WAIT counts the acknowledgements of that connection's writes. */
  private connectionFor(key: string): Redis {
    if (!isCluster(this.writer)) return this.writer;
    const nodeKey = this.nodeKeyFor(key);
    const node = this.writer.nodes("master").find((n) => `${n.options.host}:${n.options.port}` === nodeKey);
    if (node === undefined) throw new SessionBackendUnavailableError("the session backend has no master for a key slot");
    return node;
  }

  private async waitForReplicas(key: string): Promise<void> {
    if (this.waitReplicas === 0) return;
    const conn = this.connectionFor(key);
    let wanted: number;
    if (this.waitReplicas === "auto") {
      wanted = await this.expectedReplicas(conn);
      if (wanted === 0) return;
    } else {
      wanted = this.waitReplicas;
    }
    const acked = Number(await conn.call("WAIT", String(wanted), String(this.waitTimeoutMs)));
    if (acked < wanted) {
      throw new SessionBackendUnavailableError(
        `the session backend did not confirm the removal on ${wanted} replica(s) within ${this.waitTimeoutMs} ms (${acked} acknowledged)`,
      );
    }
  }

  /**
   * "auto": the replicas connected to this master now, or more if more were connected within the last
   * REPLICA_MEMORY_MS on this same connection. A replica that just left may have left because it was
   * promoted while this master is still up (planned failover, healed partition): a logout acknowledged
   * here alone would be discarded when this master is turned into a replica of the new one, so it must
   * wait for the replica it no longer has, and fail. Forgotten on reconnection (maybe another server).
   */
  private async expectedReplicas(conn: Redis): Promise<number> {
    this.watchReplicas(conn);
    const role = (await conn.call("ROLE")) as unknown[];
    const connected = role[0] === "master" && Array.isArray(role[2]) ? role[2].length : 0;
    const seen = this.replicasSeen.get(conn);
    const now = Date.now();
    if (seen === undefined || connected >= seen.count || now - seen.at > REPLICA_MEMORY_MS) {
      this.replicasSeen.set(conn, { count: connected, at: now });
      return connected;
    }
    return seen.count;
  }

  /** On every (re)connection of `conn`: forget what was seen, and look at its replicas right away. */
  private watchReplicas(conn: Redis): void {
    if (this.watched.has(conn)) return;
    this.watched.add(conn);
    conn.on("ready", () => {
      this.replicasSeen.delete(conn);
      this.expectedReplicas(conn).catch(() => undefined);
    });
  }

  /** Times the operation; a backend failure becomes SessionBackendUnavailableError, a bug stays itself (500). */
  private async op<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const end = this.metrics.cacheLatency.startTimer({ backend: this.name, op });
    try {
      return await fn();
    } catch (err) {
      throw toBackendError(op, err);
    } finally {
      end();
    }
  }
}

function isWrongType(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("WRONGTYPE");
}

function ttlMs(ttlSeconds: number): number {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new RangeError("ttlSeconds must be a positive number");
  return Math.max(1, Math.round(ttlSeconds * 1000));
}

/** The username of a stored session value, if it has one (the value is not otherwise trusted here). */
function usernameIn(raw: string | null): string | undefined {
  if (raw === null) return undefined;
  try {
    const value: unknown = JSON.parse(raw);
    const username = (value as { username?: unknown } | null)?.username;
    return typeof username === "string" && username !== "" ? username : undefined;
  } catch {
    return undefined;
  }
}

/** Redis Cluster hash slot of a key (hash tags honoured), as ioredis computes it. */
export function keySlot(key: string): number {
  return calculateSlot(key);
}
