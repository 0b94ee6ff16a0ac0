/**
 * The primary's half of the ipc session backend: it holds the sessions (an InMemorySessionCache, with its
 * per-user index), runs the workers' requests one at a time, and fans every write out as an invalidation
 * to the other workers, answering the writer once each live one has acknowledged it. Messages:
 * `ipc-protocol.ts`.
 */
import { Counter, Registry } from "prom-client";
import { silentLogger, type Logger } from "../logger";
import type { InMemorySessionCache } from "./memory";
import {
  CACHE_INVALIDATE,
  CACHE_RESPONSE,
  isCacheAck,
  isCacheHello,
  isCacheRequest,
  type CacheInvalidate,
  type CacheRequest,
  type CacheResponse,
} from "./ipc-protocol";

/** One worker as the primary sees it (a node:cluster `Worker` fits; tests adapt a ChildProcess). */
export interface IpcPeer {
  readonly id: number;
  send(message: unknown): unknown;
  isConnected(): boolean;
}

/** Options of IpcSessionServer. */
export interface IpcSessionServerOptions {
  /** Where the sessions live. */
  store: InMemorySessionCache;
  /** @default a silent logger */
  logger?: Logger;
  /**
   * A worker that has not acknowledged an invalidation within this time is handed to `onUnresponsive`
   * (the primary kills it: it can no longer be trusted to drop what a logout ended). @default 10_000
   */
  ackTimeoutMs?: number;
  /** Called once for a worker that missed `ackTimeoutMs`. @default none (the writer waits on) */
  onUnresponsive?: (peer: IpcPeer) => void;
}

interface Fanout {
  waiting: Set<number>;
  done: () => void;
  timer: NodeJS.Timeout | undefined;
}

/** Counters of the primary (its own registry: merged into `GET /metrics` by the primary). */
export interface IpcServerMetrics {
  registry: Registry;
  sent: Counter;
  acked: Counter;
}

function createServerMetrics(): IpcServerMetrics {
  const registry = new Registry();
  return {
    registry,
    sent: new Counter({
      name: "bangui_ipc_invalidations_sent_total",
      help: "Invalidations the primary sent to workers (one per worker and write)",
      registers: [registry],
    }),
    acked: new Counter({
      name: "bangui_ipc_invalidations_acked_total",
      help: "Invalidations workers acknowledged",
      registers: [registry],
    }),
  };
}

/** The session store of the node:cluster primary, serving `IpcSessionCache`s in the workers. */
export class IpcSessionServer {
  readonly store: InMemorySessionCache;
  readonly metrics: IpcServerMetrics = createServerMetrics();
  private readonly logger: Logger;
  private readonly ackTimeoutMs: number;
  private readonly onUnresponsive: ((peer: IpcPeer) => void) | undefined;
  /** Workers that said hello: they may hold sessions in their near-cache. */
  private readonly peers = new Map<number, IpcPeer>();
  private readonly fanouts = new Map<number, Fanout>();
  private seq = 0;
  /** Requests run one after the other: no write interleaves with another's check-then-act. */
  private tail: Promise<void> = Promise.resolve();
  /** Bumped by every write: the sessions file saves only when it moved. */
  private changes = 0;
  private closed = false;

  constructor(options: IpcSessionServerOptions) {
    this.store = options.store;
    this.logger = options.logger ?? silentLogger();
    this.ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
    this.onUnresponsive = options.onUnresponsive;
  }

  /** Writes applied so far (for the sessions file). */
  get changeCount(): number {
    return this.changes;
  }

  /**
   * Feed every message of a worker here. @returns true when it was one of the cache's messages.
   */
  handle(peer: IpcPeer, message: unknown): boolean {
    if (isCacheRequest(message)) {
      const request = message;
      // A worker that asks may cache what it gets: it hears of every write from now on (hello or not).
      if (!this.peers.has(peer.id)) this.peers.set(peer.id, peer);
      this.tail = this.tail
        .then(() => this.run(peer, request))
        .catch((err: unknown) => this.logger.error({ err }, "ipc cache request failed"));
      return true;
    }
    if (isCacheAck(message)) {
      this.acked(peer.id, message.seq);
      this.metrics.acked.inc();
      return true;
    }
    if (isCacheHello(message)) {
      this.peers.set(peer.id, peer);
      return true;
    }
    return false;
  }

  /** A worker exited or disconnected: nothing waits for it any more (a new worker starts empty). */
  peerGone(peer: { id: number }): void {
    this.peers.delete(peer.id);
    for (const seq of [...this.fanouts.keys()]) this.acked(peer.id, seq);
  }

  /** Stops waiting for anything (pending writers get no answer: their own timeout ends them). */
  close(): void {
    this.closed = true;
    for (const fanout of this.fanouts.values()) if (fanout.timer !== undefined) clearTimeout(fanout.timer);
    this.fanouts.clear();
  }

  private async run(peer: IpcPeer, request: CacheRequest): Promise<void> {
    let response: CacheResponse;
    let invalidation: Omit<CacheInvalidate, "type" | "seq"> | undefined;
    try {
      const store = this.store;
      // Shapes are checked where they matter: the store parses every session with the schema.
      const args = request.args as unknown as [string, never, number];
      switch (request.op) {
        case "get": {
          const [id] = args;
          const value = await store.get(id);
          response = { type: CACHE_RESPONSE, id: request.id, value, ...(value !== null ? { ttlMs: store.remainingTtlMs(id) } : {}) };
          break;
        }
        case "set": {
          const [id, session, ttl] = args;
          // A new id is in no near-cache (only stored sessions are cached): no fan-out for a login.
          const existed = store.remainingTtlMs(id) > 0;
          await store.set(id, session, ttl);
          this.changes++;
          if (existed) invalidation = { ids: [id] };
          response = { type: CACHE_RESPONSE, id: request.id, value: null };
          break;
        }
        case "update": {
          const [id, session, ttl] = args;
          const value = await store.update(id, session, ttl);
          if (value) invalidation = { ids: [id] };
          response = { type: CACHE_RESPONSE, id: request.id, value };
          break;
        }
        case "invalidate": {
          const [id] = args;
          await store.invalidate(id);
          invalidation = { ids: [id] };
          response = { type: CACHE_RESPONSE, id: request.id, value: null };
          break;
        }
        case "listUserSessions": {
          const [username] = args;
          response = { type: CACHE_RESPONSE, id: request.id, value: await store.listUserSessions(username) };
          break;
        }
        case "invalidateUser": {
          const [username] = args;
          // Runs alone (the queue): a login of this user lands wholly before (removed) or after (kept, listed).
          const ids = (await store.listUserSessions(username)).map((s) => s.id);
          const value = await store.invalidateUser(username);
          invalidation = { ids };
          response = { type: CACHE_RESPONSE, id: request.id, value };
          break;
        }
        case "clear":
          await store.clear();
          invalidation = { all: true };
          response = { type: CACHE_RESPONSE, id: request.id, value: null };
          break;
        case "ping":
          response = { type: CACHE_RESPONSE, id: request.id, value: null };
          break;
      }
    } catch (err) {
      // A bad argument (a session that fails the schema, a bad TTL): the worker rethrows it as a plain Error.
      response = { type: CACHE_RESPONSE, id: request.id, error: err instanceof Error ? err.message.slice(0, 300) : "failed" };
    }
    if (invalidation !== undefined) {
      if (request.op !== "set") this.changes++;
      // Not awaited: the next request runs meanwhile; only this writer's answer waits for the acks.
      void this.fanout(peer.id, invalidation).then(() => this.reply(peer, response));
    } else {
      this.reply(peer, response);
    }
  }

  private fanout(writer: number, what: Omit<CacheInvalidate, "type" | "seq">): Promise<void> {
    if (what.ids !== undefined && what.ids.length === 0) return Promise.resolve();
    const seq = ++this.seq;
    const message: CacheInvalidate = { type: CACHE_INVALIDATE, seq, ...what };
    const waiting = new Set<number>();
    for (const peer of this.peers.values()) {
      if (peer.id === writer) continue;
      if (!peer.isConnected()) {
        this.peers.delete(peer.id);
        continue;
      }
      try {
        peer.send(message);
        waiting.add(peer.id);
        this.metrics.sent.inc();
      } catch {
        // Disconnected between the check and the send: it is dead, and a new worker starts empty.
        this.peers.delete(peer.id);
      }
    }
    if (waiting.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const fanout: Fanout = { waiting, done: resolve, timer: undefined };
      fanout.timer = setTimeout(() => {
        for (const id of fanout.waiting) {
          const peer = this.peers.get(id);
          this.logger.error({ worker: id, seq, timeoutMs: this.ackTimeoutMs }, "worker did not acknowledge an invalidation");
          if (peer !== undefined) this.onUnresponsive?.(peer);
        }
      }, this.ackTimeoutMs);
      fanout.timer.unref();
      this.fanouts.set(seq, fanout);
    });
  }

  private acked(peerId: number, seq: number): void {
    const fanout = this.fanouts.get(seq);
    if (fanout === undefined || !fanout.waiting.delete(peerId) || fanout.waiting.size > 0) return;
    this.fanouts.delete(seq);
    if (fanout.timer !== undefined) clearTimeout(fanout.timer);
    fanout.done();
  }

  private reply(peer: IpcPeer, response: CacheResponse): void {
    if (this.closed || !peer.isConnected()) return;
    try {
      peer.send(response);
    } catch {
      // The asking worker is gone; its request died with it.
    }
  }
}
