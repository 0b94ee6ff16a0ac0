import type { Cluster, Redis } from "ioredis";
import { keySlot } from "./redis";
import type { TrackingChannel } from "./tracking-channel";

/**
 * Which tracking channel covers a key, and whether local entries may be served at all. One channel on a
 * standalone or Sentinel client; one per master on a Cluster.
 */
export interface ChannelRouter {
  /** The channel of the server that owns `key` now (undefined: none known, read through). */
  channelFor(key: string): TrackingChannel | undefined;
  /** Every channel is up. */
  readonly up: boolean;
  /** Every channel is up and its subscriber answered within the silence bound. */
  readonly serving: boolean;
  /** Resolves true once a PING sent after the call was answered on every channel. */
  barrier(): Promise<boolean>;
  close(): void;
}

/** A standalone or Sentinel client: one data connection, one channel. */
export class SingleChannel implements ChannelRouter {
  constructor(private readonly channel: TrackingChannel) {}
  channelFor(): TrackingChannel {
    return this.channel;
  }
  get up(): boolean {
    return this.channel.up;
  }
  get serving(): boolean {
    return this.channel.serving;
  }
  barrier(): Promise<boolean> {
    return this.channel.barrier();
  }
  close(): void {
    this.channel.close();
  }
}

/**
 * Redis Cluster: a channel per master, on ioredis's own connection to that master (the one its reads of
 * the master's slots go through), redirected to a subscriber on the same master. Follows the topology:
 * on every node added or removed, role change and slots refresh, masters without a channel get one and
 * channels of servers that are no longer masters are closed; each such change calls `onChange` (the
 * core empties its local layer). A key whose slot owner has no channel that is up is read through.
 *
 * The barrier asks every master: during a slot migration a read may be answered by the importing node
 * (ASK), whose invalidations arrive on that node's channel, not on the slot owner's.
 */
export class ClusterChannels implements ChannelRouter {
  private readonly channels = new Map<string, { data: Redis; channel: TrackingChannel }>();
  private readonly remove: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly open: (data: Redis, node: { host: string; port: number }) => TrackingChannel,
    private readonly onChange: () => void,
  ) {
    const sync = () => this.sync();
    for (const event of ["+node", "-node", "refresh", "ready"]) {
      cluster.on(event, sync);
      this.remove.push(() => cluster.off(event, sync));
    }
    this.sync();
  }

  channelFor(key: string): TrackingChannel | undefined {
    const owner = this.cluster.slots[keySlot(key)]?.[0];
    return owner === undefined ? undefined : this.channels.get(owner)?.channel;
  }

  get up(): boolean {
    if (this.channels.size === 0) return false;
    for (const { channel } of this.channels.values()) if (!channel.up) return false;
    return true;
  }

  get serving(): boolean {
    if (this.channels.size === 0) return false;
    for (const { channel } of this.channels.values()) if (!channel.serving) return false;
    return true;
  }

  async barrier(): Promise<boolean> {
    const all = await Promise.all([...this.channels.values()].map(({ channel }) => channel.barrier()));
    return all.length > 0 && all.every(Boolean);
  }

  close(): void {
    this.closed = true;
    for (const r of this.remove) r();
    for (const { channel } of this.channels.values()) channel.close();
    this.channels.clear();
  }

  /** Matches the channels to ioredis's masters now. */
  private sync(): void {
    if (this.closed) return;
    let changed = false;
    const masters = new Map<string, Redis>();
    for (const node of this.cluster.nodes("master")) {
      masters.set(`${node.options.host}:${node.options.port}`, node);
    }
    for (const [key, { data, channel }] of this.channels) {
      if (masters.get(key) !== data) {
        channel.close();
        this.channels.delete(key);
        changed = true;
      }
    }
    for (const [key, data] of masters) {
      if (this.channels.has(key)) continue;
      // ioredis connects its node connections on their first command: tracking needs one now.
      if (data.status === "wait") data.connect().catch(() => undefined);
      const node = { host: data.options.host ?? "127.0.0.1", port: data.options.port ?? 6379 };
      this.channels.set(key, { data, channel: this.open(data, node) });
      changed = true;
    }
    if (changed) this.onChange();
  }
}
