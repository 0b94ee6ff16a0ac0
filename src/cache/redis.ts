import { Cluster, type Redis } from "ioredis";
import { SessionBackendUnavailableError } from "../errors";
import { silentLogger, type Logger } from "../logger";
import { metrics } from "../metrics";
import { createKeySpace, type KeySpace } from "./keys";
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
  /** close() quits the client. @default true */
  ownsClient?: boolean;
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
  readonly keys: KeySpace;
  private readonly logger: Logger;
  private readonly waitReplicas: "auto" | number;
  private readonly waitTimeoutMs: number;
  private readonly ownsClient: boolean;
  private closed = false;
  /** "auto" WAIT: most replicas lately seen on each master connection (see expectedReplicas). */
  private readonly replicasSeen = new WeakMap<Redis, { count: number; at: number }>();
  private readonly watched = new WeakSet<Redis>();

  constructor(o: RedisSessionCacheOptions) {
    this.client = o.client;
    this.keys = createKeySpace(o.keyPrefix ?? "bangui:");
    this.logger = o.logger ?? silentLogger();
    this.waitReplicas = o.waitReplicas ?? 0;
    this.waitTimeoutMs = o.waitTimeoutMs ?? 500;
    this.ownsClient = o.ownsClient ?? true;
    // Knows the replicas before the first logout (a Cluster's node connections are watched when first used).
    if (this.waitReplicas === "auto" && !(this.client instanceof Cluster)) this.watchReplicas(this.client);
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
      // The session exists before its id is indexed: a logout-all that reads the id then deletes a key
      // that is already there (on a cluster they live on different nodes, so sent together they may land
      // in either order, and the key would outlive the logout-all, unindexed).
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
      await this.client.unlink(key);
      await this.waitForReplicas(key);
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
      const removed = await Promise.all(ids.map((id) => this.client.unlink(this.keys.session(id))));
      // Only the ids read: a login racing this one (SADD after the SMEMBERS) must stay indexed.
      if (ids.length > 0) await this.client.srem(index, ...ids);
      // WAIT on every node written to: on a cluster the session keys live on other masters than the index.
      const nodesWritten = new Set<string>();
      for (const id of ids) {
        const key = this.keys.session(id);
        const node = this.nodeKeyFor(key);
        if (!nodesWritten.has(node)) {
          nodesWritten.add(node);
          await this.waitForReplicas(key);
        }
      }
      if (!nodesWritten.has(this.nodeKeyFor(index))) await this.waitForReplicas(index);
      return removed.reduce((n, r) => n + r, 0);
    });
  }

  async clear(): Promise<void> {
    await this.op("clear", async () => {
      const pattern = `${escapeGlob(this.keys.prefix)}*`;
      for (const node of this.masters()) {
        let cursor = "0";
        do {
          const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT);
          cursor = next;
          // One key per UNLINK on a cluster node would be slow; keys from one node's SCAN may still be in
          // different slots, so group by slot to stay within CROSSSLOT rules.
          if (keys.length > 0) {
            if (this.client instanceof Cluster) {
              const bySlot = new Map<number, string[]>();
              for (const k of keys) {
                const s = keySlot(k);
                const list = bySlot.get(s);
                if (list) list.push(k);
                else bySlot.set(s, [k]);
              }
              await Promise.all([...bySlot.values()].map((group) => node.unlink(...group)));
            } else {
              await node.unlink(...keys);
            }
          }
        } while (cursor !== "0");
      }
    });
  }

  async ping(): Promise<void> {
    await this.op("ping", async () => {
      await this.client.ping();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.ownsClient) return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
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
    metrics.cacheCorruptValues.inc({ backend: this.name });
    // The value itself is never logged: it may be anything, including someone's secret.
    this.logger.warn({ reason, keyPrefix: this.keys.sessionPrefix }, "removed an unusable session value");
    await this.client.unlink(key);
  }

  private masters(): Redis[] {
    return this.client instanceof Cluster ? this.client.nodes("master") : [this.client];
  }

  /** "host:port" of the master holding `key` ("" on a standalone/sentinel client). */
  private nodeKeyFor(key: string): string {
    if (!(this.client instanceof Cluster)) return "";
    return this.client.slots[keySlot(key)]?.[0] ?? "";
  }

  /** The connection that wrote `key`: WAIT counts the acknowledgements of that connection's writes. */
  private connectionFor(key: string): Redis {
    if (!(this.client instanceof Cluster)) return this.client;
    const nodeKey = this.nodeKeyFor(key);
    const node = this.client.nodes("master").find((n) => `${n.options.host}:${n.options.port}` === nodeKey);
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

  /** Times the operation and turns every Redis failure into SessionBackendUnavailableError. */
  private async op<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const end = metrics.cacheLatency.startTimer({ backend: this.name, op });
    try {
      return await fn();
    } catch (err) {
      throw toUnavailable(op, err);
    } finally {
      end();
    }
  }
}

/** Wraps a Redis failure; the message names the operation and the kind of failure, never a key or value. */
export function toUnavailable(op: string, err: unknown): SessionBackendUnavailableError {
  if (err instanceof SessionBackendUnavailableError) return err;
  return new SessionBackendUnavailableError(`the session backend is unavailable (${op}: ${describe(err)})`, { cause: err });
}

const KNOWN = [
  "CLUSTERDOWN", "LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "NOREPLICAS", "BUSY", "NOAUTH", "WRONGPASS",
  "NOPERM", "OOM", "MOVED", "ASK", "NOSCRIPT", "EXECABORT", "WRONGTYPE",
];

function describe(err: unknown): string {
  if (!(err instanceof Error)) return "unknown error";
  const msg = err.message;
  const code = KNOWN.find((k) => msg.startsWith(k));
  if (code !== undefined) return code;
  if (err.name === "MaxRetriesPerRequestError") return "max retries per request";
  if (/timed out/i.test(msg)) return "command timed out";
  if (/Connection is closed|Stream isn't writeable|enableOfflineQueue|offline/i.test(msg)) return "not connected";
  if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|EPIPE/.test(msg)) return "connection failed";
  if (/Failed to refresh slots cache|None of startup nodes|Too many Cluster redirections/i.test(msg)) return "cluster unavailable";
  if (/sentinel/i.test(msg)) return "sentinel unavailable";
  return err.name === "ReplyError" ? "error reply" : err.name;
}

function isWrongType(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("WRONGTYPE");
}

function ttlMs(ttlSeconds: number): number {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new RangeError("ttlSeconds must be a positive number");
  return Math.max(1, Math.round(ttlSeconds * 1000));
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Redis Cluster hash slot of a key (CRC16/XMODEM of the hash tag or key, mod 16384). */
export function keySlot(key: string): number {
  let s = key;
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) s = key.slice(open + 1, close);
  }
  const bytes = Buffer.from(s, "utf8");
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
