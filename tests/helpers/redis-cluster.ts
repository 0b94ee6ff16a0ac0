/**
 * A private Redis Cluster for tests: three masters with one replica each (`--cluster-enabled yes`,
 * `redis-cli --cluster create ... --cluster-replicas 1`), on free loopback ports in one temp dir,
 * with a short `cluster-node-timeout` so a master failover completes in a few seconds.
 *
 * Never touches 127.0.0.1:6379. `stop()` SIGKILLs every process it started and removes the dir.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  command,
  dataNodeArgs,
  freePorts,
  info,
  makeTempDir,
  removeDir,
  spawnRedis,
  waitFor,
  type RedisProcess,
} from "./redis-process";

export type { RedisProcess } from "./redis-process";

const run = promisify(execFile);

/** Options of {@link startClusterTopology}. */
export interface ClusterTopologyOptions {
  /** Masters. @default 3 */
  masters?: number;
  /** Replicas per master. @default 1 */
  replicasPerMaster?: number;
  /** `cluster-node-timeout` in ms. @default 1000 */
  nodeTimeoutMs?: number;
}

/** One line of `CLUSTER NODES`. */
export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: "master" | "replica";
  /** For a replica: the id of its master. */
  masterId: string | undefined;
  /** Flags like `fail`, `myself`, `handshake`. */
  flags: string[];
  /** Slot ranges [from, to] served (masters only). */
  slots: Array<[number, number]>;
  /** The process behind it. */
  process: RedisProcess;
}

/** A running cluster. */
export interface ClusterTopology {
  readonly nodes: readonly RedisProcess[];
  /** `redis+cluster://127.0.0.1:p1,...` listing every node. */
  readonly url: string;
  /** `CLUSTER NODES` as seen by a live node. */
  clusterNodes(): Promise<ClusterNodeInfo[]>;
  /** Masters serving slots right now, not failed, ordered by their first slot. */
  masters(): Promise<ClusterNodeInfo[]>;
  /** `CLUSTER KEYSLOT key`, asked of a live node. */
  keySlot(key: string): Promise<number>;
  /** The master serving `key`. */
  masterForKey(key: string): Promise<ClusterNodeInfo>;
  /** The live replicas of a master. */
  replicasOf(master: ClusterNodeInfo): Promise<ClusterNodeInfo[]>;
  /**
   * Waits until every live node reports `cluster_state:ok`, all 16384 slots are assigned to live
   * masters, and every live node agrees on who serves them.
   */
  waitForHealthy(timeoutMs?: number): Promise<void>;
  /** Waits until a live replica of `oldMaster` serves its slots and the cluster is healthy; returns it. */
  waitForFailover(oldMaster: ClusterNodeInfo, timeoutMs?: number): Promise<ClusterNodeInfo>;
  /** SIGKILLs every process and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the nodes, creates the cluster and resolves once it is healthy on every node. */
export async function startClusterTopology(options: ClusterTopologyOptions = {}): Promise<ClusterTopology> {
  const masterCount = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const dir = makeTempDir("cluster");
  const ports = await freePorts(masterCount * (1 + replicas));
  const nodes: RedisProcess[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map((p) => p.kill()));
    removeDir(dir);
  };
  try {
    await Promise.all(
      ports.map(async (port) => {
        const p = await spawnRedis(
          [
            ...dataNodeArgs(port, dir),
            "--cluster-enabled", "yes",
            "--cluster-config-file", join(dir, `nodes-${port}.conf`),
            "--cluster-node-timeout", String(nodeTimeoutMs),
            // A replica may always take over, however long its link was down (tests kill masters).
            "--cluster-replica-validity-factor", "0",
            "--cluster-announce-ip", "127.0.0.1",
          ],
          { port, dir, role: "data", logFile: join(dir, `redis-${port}.log`) },
        );
        nodes.push(p);
      }),
    );
    nodes.sort((a, b) => ports.indexOf(a.port) - ports.indexOf(b.port));
    await run(
      "redis-cli",
      ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", String(replicas), "--cluster-yes"],
      { timeout: 20_000 },
    );
    const topology = makeTopology(nodes, masterCount, replicas, stopAll);
    await topology.waitForHealthy(10_000);
    return topology;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function parseClusterNodes(text: string, nodes: readonly RedisProcess[]): ClusterNodeInfo[] {
  const out: ClusterNodeInfo[] = [];
  for (const line of text.trim().split("\n")) {
    const parts = line.trim().split(" ");
    const [id, addr, flagText, master] = parts;
    if (id === undefined || addr === undefined || flagText === undefined) continue;
    const port = Number(/:(\d+)@/.exec(addr)?.[1]);
    const process = nodes.find((n) => n.port === port);
    if (process === undefined) continue;
    const flags = flagText.split(",");
    const slots: Array<[number, number]> = [];
    for (const s of parts.slice(8)) {
      if (s.startsWith("[")) continue; // migrating/importing
      const [from, to] = s.split("-");
      slots.push([Number(from), Number(to ?? from)]);
    }
    out.push({
      id,
      port,
      role: flags.includes("master") ? "master" : "replica",
      masterId: master === "-" ? undefined : master,
      flags,
      slots,
      process,
    });
  }
  return out;
}

function makeTopology(
  nodes: RedisProcess[],
  masterCount: number,
  replicas: number,
  stopAll: () => Promise<void>,
): ClusterTopology {
  let stopped = false;
  const liveNode = (): RedisProcess => {
    const n = nodes.find((p) => p.alive);
    if (n === undefined) throw new Error("no live cluster node");
    return n;
  };
  const nodesSeenBy = async (port: number): Promise<ClusterNodeInfo[]> =>
    parseClusterNodes(String(await command(port, ["CLUSTER", "NODES"])), nodes);
  const serving = (list: ClusterNodeInfo[]): ClusterNodeInfo[] =>
    list
      .filter((n) => n.role === "master" && n.slots.length > 0 && !n.flags.includes("fail") && !n.flags.includes("fail?"))
      .sort((a, b) => a.slots[0]![0] - b.slots[0]![0]);

  const topology: ClusterTopology = {
    nodes,
    url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(",")}`,
    clusterNodes: () => nodesSeenBy(liveNode().port),
    async masters() {
      return serving(await topology.clusterNodes());
    },
    async keySlot(key) {
      return Number(await command(liveNode().port, ["CLUSTER", "KEYSLOT", key]));
    },
    async masterForKey(key) {
      const slot = await topology.keySlot(key);
      const m = (await topology.masters()).find((n) => n.slots.some(([a, b]) => slot >= a && slot <= b));
      if (m === undefined) throw new Error(`no master serves slot ${slot}`);
      return m;
    },
    async replicasOf(master) {
      return (await topology.clusterNodes()).filter(
        (n) => n.masterId === master.id && n.process.alive && !n.flags.includes("fail"),
      );
    },
    async waitForHealthy(timeoutMs = 10_000) {
      await waitFor("the cluster is ok on every live node", timeoutMs, async () => {
        let view: string | undefined;
        for (const n of nodes.filter((p) => p.alive)) {
          if ((await info(n.port, "cluster")).get("cluster_enabled") !== "1") return false;
          const ci = String(await command(n.port, ["CLUSTER", "INFO"]));
          if (!/cluster_state:ok/.test(ci) || !/cluster_slots_ok:16384/.test(ci)) return false;
          const masters = serving(await nodesSeenBy(n.port));
          if (masters.length !== masterCount || masters.some((m) => !m.process.alive)) return false;
          const covered = masters.reduce((sum, m) => sum + m.slots.reduce((s, [a, b]) => s + b - a + 1, 0), 0);
          if (covered !== 16384) return false;
          const thisView = masters.map((m) => `${m.port}:${JSON.stringify(m.slots)}`).join("|");
          if (view !== undefined && view !== thisView) return false;
          view = thisView;
        }
        return true;
      }, 100);
      // Replicas must have finished their initial sync before a test relies on them.
      await waitFor("every live replica is in sync", timeoutMs, async () => {
        for (const n of nodes.filter((p) => p.alive)) {
          const r = await info(n.port, "replication");
          if (r.get("role") === "slave" && (r.get("master_link_status") !== "up" || r.get("master_sync_in_progress") !== "0")) {
            return false;
          }
        }
        return true;
      });
      void replicas;
    },
    async waitForFailover(oldMaster, timeoutMs = 15_000) {
      let promoted: ClusterNodeInfo | undefined;
      const oldSlots = JSON.stringify(oldMaster.slots);
      await waitFor(`a replica of ${oldMaster.port} takes over`, timeoutMs, async () => {
        promoted = (await topology.masters()).find(
          (m) => m.id !== oldMaster.id && m.process.alive && JSON.stringify(m.slots) === oldSlots,
        );
        return promoted !== undefined;
      }, 100);
      await topology.waitForHealthy(timeoutMs);
      return promoted!;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopAll();
    },
  };
  return topology;
}
