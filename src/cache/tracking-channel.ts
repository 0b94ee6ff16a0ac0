import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "../logger";

/**
 * `"bcast"`: `CLIENT TRACKING ON REDIRECT <id> BCAST PREFIX <prefix>`, every write of a key under the
 * prefix is announced. `"default"`: `CLIENT TRACKING ON REDIRECT <id>`, only keys this data connection
 * read since their last invalidation are announced (Redis keeps a table of them).
 */
export type TrackingMode = "bcast" | "default";

/** Options of one tracking channel: a data connection whose tracking is redirected to a subscriber. */
export interface TrackingChannelOptions {
  /** The tracked data connection (reads that fill the local layer must go through it). */
  data: Redis;
  /** Builds the dedicated RESP2 subscriber on the same server as `data`. Called once. */
  createSubscriber: () => Redis;
  /** Prefix of the keys whose invalidations matter. */
  prefix: string;
  mode: TrackingMode;
  pingIntervalMs: number;
  maxSilenceMs: number;
  ownsSubscriber: boolean;
  logger: Logger;
  /** Keys (full names, already filtered by prefix) that changed; `null`: the whole db was flushed. */
  onInvalidate(keys: string[] | null): void;
  /** Tracking went down or came up: everything cached through this channel (and reads in flight) is void. */
  onReset(): void;
  /** Tracking was established again after `bypassMs` of bypass (not called on the first establishment). */
  onUp?(bypassMs: number): void;
  /** The server refused CLIENT TRACKING: the channel is off for good. */
  onRefused?(reason: string): void;
}

const CHANNEL = "__redis__:invalidate";

type State = "starting" | "up" | "down" | "off";

/**
 * One data connection tracked by one RESP2 subscriber on `__redis__:invalidate`. Whenever tracking is not
 * known to be in place (start-up, either connection closed or reconnected, a failed ping, the two
 * connections on different servers) the channel is not `up`, and each change calls `onReset`.
 *
 * Freshness: `freshAt` is the send time of the last subscriber PING that was answered. Redis runs every
 * command of every connection in one order and writes an invalidation to the subscriber before anything
 * it runs later, so when that PONG arrives every write that completed before `freshAt` has been announced
 * (and handled: the subscriber's replies are processed in order). `barrier()` asks for a PING sent now.
 */
export class TrackingChannel {
  /** Bumped by every reset: whatever was read through this channel before belongs to another epoch. */
  epoch = 0;
  /** Send time (epoch ms) of the last answered subscriber PING, or of the establishment. */
  freshAt = 0;
  private state: State = "starting";
  private readonly o: TrackingChannelOptions;
  private readonly sub: Redis;
  private subId: number | undefined;
  private subName = "";
  private losses = 0;
  private subConnections = 0;
  private downSince = Date.now();
  private readonly pingTimer: NodeJS.Timeout;
  private inflight: Promise<boolean> | undefined;
  private queued: { promise: Promise<boolean>; resolve: (ok: boolean) => void } | undefined;
  private closed = false;
  private readonly listeners: Array<() => void> = [];

  constructor(o: TrackingChannelOptions) {
    this.o = o;
    const sub = o.createSubscriber();
    this.sub = sub;
    // One CLIENT ID per subscriber connection: subscribe by hand on every 'ready' (CLIENT ID is refused
    // in RESP2 subscribed mode, and ioredis would otherwise resubscribe before we could ask).
    sub.options.autoResubscribe = false;
    const on = (emitter: Redis, event: string, fn: (...args: never[]) => void) => {
      emitter.on(event, fn as (...args: unknown[]) => void);
      this.listeners.push(() => emitter.off(event, fn as (...args: unknown[]) => void));
    };
    on(sub, "messageBuffer", (channel: Buffer, message: Buffer[] | Buffer | null) => this.onMessage(channel, message));
    on(sub, "close", () => {
      this.subId = undefined;
      this.subConnections++;
      this.goDown("subscriber connection lost");
    });
    on(sub, "ready", () => void this.subscribe());
    on(o.data, "close", () => this.goDown("data connection lost"));
    on(o.data, "ready", () => void this.track());
    if (sub.status === "ready") void this.subscribe();
    this.pingTimer = setInterval(() => void this.barrier(), o.pingIntervalMs);
    this.pingTimer.unref();
  }

  /** Tracking is established (whatever the freshness). */
  get up(): boolean {
    return this.state === "up";
  }

  /** The server refused tracking: the channel will never be up. */
  get off(): boolean {
    return this.state === "off";
  }

  /** Up, and the subscriber answered a PING sent within `maxSilenceMs`. */
  get serving(): boolean {
    return this.state === "up" && Date.now() - this.freshAt <= this.o.maxSilenceMs;
  }

  /**
   * Resolves true once a subscriber PING sent after this call was answered (every invalidation of a write
   * that completed before the call has then been handled), false if it failed. Batched: every caller that
   * arrives while a PING is in flight shares the next one, sent when that one returns.
   */
  barrier(): Promise<boolean> {
    if (this.state !== "up") return Promise.resolve(false);
    if (this.inflight === undefined) {
      this.inflight = this.ping();
      return this.inflight;
    }
    if (this.queued === undefined) {
      let resolve!: (ok: boolean) => void;
      const promise = new Promise<boolean>((r) => (resolve = r));
      this.queued = { promise, resolve };
    }
    return this.queued.promise;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.state !== "off") this.goDown("closed", false);
    this.state = "off";
    clearInterval(this.pingTimer);
    for (const remove of this.listeners) remove();
    this.queued?.resolve(false);
    if (this.o.ownsSubscriber) this.sub.disconnect();
  }

  private async ping(): Promise<boolean> {
    const sentAt = Date.now();
    const epoch = this.epoch;
    let ok: boolean;
    try {
      await this.sub.ping();
      ok = epoch === this.epoch && this.state === "up";
      if (ok) this.freshAt = Math.max(this.freshAt, sentAt);
    } catch {
      ok = false;
      if (!this.closed && this.state !== "off" && epoch === this.epoch) {
        this.subId = undefined;
        this.goDown("subscriber did not answer a ping");
        // Drop the connection: its 'ready' after the reconnect re-establishes tracking with a new id.
        this.sub.disconnect(true);
      }
    }
    this.inflight = undefined;
    const next = this.queued;
    this.queued = undefined;
    // Those who arrived while this PING was in flight share the next one (not awaited: this PING's own
    // callers are answered now).
    if (next !== undefined) void this.barrier().then(next.resolve);
    return ok;
  }

  private onMessage(channel: Buffer, message: Buffer[] | Buffer | null): void {
    if (channel.toString() !== CHANNEL) return;
    if (message === null) {
      this.o.onInvalidate(null);
      return;
    }
    const keys: string[] = [];
    for (const raw of Array.isArray(message) ? message : [message]) {
      const key = raw.toString();
      if (key.startsWith(this.o.prefix)) keys.push(key);
    }
    if (keys.length > 0) this.o.onInvalidate(keys);
  }

  private async subscribe(): Promise<void> {
    const sub = this.sub;
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
    const data = this.o.data;
    const subId = this.subId;
    if (this.closed || this.state === "off" || subId === undefined || data.status !== "ready") return;
    const losses = this.losses;
    const startedAt = Date.now();
    try {
      // OFF first: ON again with the same prefix is refused as an overlap.
      await data.call("CLIENT", "TRACKING", "OFF");
      const mode = this.o.mode === "bcast" ? ["BCAST", "PREFIX", this.o.prefix] : [];
      await data.call("CLIENT", "TRACKING", "ON", "REDIRECT", String(subId), ...mode);
    } catch (err) {
      if (err instanceof Error && /redirect to does not exist/i.test(err.message)) this.retryElsewhere();
      else this.onSetupError(err);
      return;
    }
    // After a failover the two connections may briefly reach different servers, where the REDIRECT id
    // would name nobody (or someone else): check that the data connection sees our subscriber.
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
    this.epoch++;
    this.o.onReset();
    if (this.state !== "starting") this.o.onUp?.(Date.now() - this.downSince);
    this.freshAt = startedAt;
    this.state = "up";
    this.o.logger.info({ prefix: this.o.prefix, mode: this.o.mode }, "near-cache tracking established");
  }

  /** The two connections reach different servers: stay bypassed, reconnect the subscriber a bit later. */
  private retryElsewhere(): void {
    this.subId = undefined;
    this.goDown("subscriber and data connection reach different servers");
    setTimeout(() => {
      if (!this.closed && !this.isOff()) this.sub.disconnect(true);
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
    this.epoch++;
    this.o.onReset();
    if (this.state === "up") {
      this.state = "down";
      this.downSince = Date.now();
      if (log) this.o.logger.warn({ reason }, "near-cache bypassed until tracking is re-established");
    }
  }

  private turnOff(reason: string): void {
    this.epoch++;
    this.o.onReset();
    this.state = "off";
    clearInterval(this.pingTimer);
    if (this.o.ownsSubscriber) this.sub.disconnect();
    this.o.onRefused?.(reason);
  }

  /** A method, so that TypeScript does not narrow the state across awaits. */
  private isOff(): boolean {
    return this.state === "off";
  }
}
