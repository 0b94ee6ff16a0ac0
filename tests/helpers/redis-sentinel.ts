/**
 * A private Redis Sentinel topology for tests: one master, one replica (`--replicaof`) and three
 * sentinels (`redis-server <conf> --sentinel`, each with its own writable config file), all on free
 * loopback ports in one temp dir. Sentinels are pre-seeded with each other and with the replica
 * (`sentinel myid`, `known-sentinel`, `known-replica`) so no discovery round is needed, and use a
 * short `down-after-milliseconds` so a failover completes in a few seconds.
 *
 * Never touches 127.0.0.1:6379. `stop()` SIGKILLs every process it started and removes the dir.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import {
  command,
  dataNodeArgs,
  freePorts,
  info,
  makeTempDir,
  removeDir,
  spawnRedis,
  waitFor,
  writeConfig,
  type RedisProcess,
} from "./redis-process";

export type { RedisProcess } from "./redis-process";

/** Options of {@link startSentinelTopology}. */
export interface SentinelTopologyOptions {
  /** Name the sentinels monitor. @default "mymaster" */
  masterName?: string;
  /** `sentinel down-after-milliseconds`. @default 1000 */
  downAfterMs?: number;
  /** `sentinel failover-timeout`. @default 3000 */
  failoverTimeoutMs?: number;
  /** Replicas of the master. @default 1 */
  replicas?: number;
}

/** A running Sentinel topology. */
export interface SentinelTopology {
  readonly masterName: string;
  /** Data nodes (the initial master first, then the replicas), whatever their current role. */
  readonly nodes: readonly RedisProcess[];
  readonly sentinels: readonly RedisProcess[];
  /** `redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/<masterName>` */
  readonly url: string;
  /** The data node the sentinels currently name as master (asks a live sentinel). */
  currentMaster(): Promise<RedisProcess>;
  /** Live data nodes other than the current master. */
  currentReplicas(): Promise<RedisProcess[]>;
  /** SIGKILLs the current master; returns it. */
  killMaster(): Promise<RedisProcess>;
  /**
   * Waits until the sentinels name a live master other than `oldMaster` and that node reports
   * `role:master`. Returns the new master.
   */
  waitForFailover(oldMaster: RedisProcess, timeoutMs?: number): Promise<RedisProcess>;
  /** Waits until `replica` is connected to the current master with its link up. */
  waitForReplicaSync(replica: RedisProcess, timeoutMs?: number): Promise<void>;
  /** SIGKILLs every process and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Starts master + replica(s) + three sentinels; resolves when every sentinel sees the whole topology. */
export async function startSentinelTopology(options: SentinelTopologyOptions = {}): Promise<SentinelTopology> {
  const masterName = options.masterName ?? "mymaster";
  const downAfterMs = options.downAfterMs ?? 1000;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 3000;
  const replicaCount = options.replicas ?? 1;
  const dir = makeTempDir("sentinel");
  const ports = await freePorts(1 + replicaCount + 3);
  const dataPorts = ports.slice(0, 1 + replicaCount);
  const sentinelPorts = ports.slice(1 + replicaCount);
  const masterPort = dataPorts[0]!;
  const started: RedisProcess[] = [];
  const nodes: RedisProcess[] = [];
  const sentinels: RedisProcess[] = [];

  const stopAll = async (): Promise<void> => {
    await Promise.all(started.map((p) => p.kill()));
    removeDir(dir);
  };

  try {
    const spawnData = async (port: number, extra: string[]): Promise<RedisProcess> => {
      const p = await spawnRedis([...dataNodeArgs(port, dir), ...extra], {
        port,
        dir,
        role: "data",
        logFile: join(dir, `redis-${port}.log`),
      });
      started.push(p);
      return p;
    };
    nodes.push(await spawnData(masterPort, []));
    nodes.push(
      ...(await Promise.all(
        dataPorts.slice(1).map((port) => spawnData(port, ["--replicaof", "127.0.0.1", String(masterPort)])),
      )),
    );

    const ids = sentinelPorts.map(() => randomBytes(20).toString("hex"));
    sentinels.push(
      ...(await Promise.all(
        sentinelPorts.map(async (port, i) => {
          const conf = writeConfig(dir, `sentinel-${port}.conf`, [
            `port ${port}`,
            "bind 127.0.0.1",
            "protected-mode no",
            `dir ${dir}`,
            `logfile ${join(dir, `sentinel-${port}.log`)}`,
            `sentinel myid ${ids[i]}`,
            "sentinel announce-ip 127.0.0.1",
            `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
            `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
            `sentinel failover-timeout ${masterName} ${failoverTimeoutMs}`,
            `sentinel parallel-syncs ${masterName} 1`,
            ...dataPorts.slice(1).map((rp) => `sentinel known-replica ${masterName} 127.0.0.1 ${rp}`),
            ...sentinelPorts.flatMap((sp, j) =>
              j === i ? [] : [`sentinel known-sentinel ${masterName} 127.0.0.1 ${sp} ${ids[j]}`],
            ),
          ]);
          const p = await spawnRedis([conf, "--sentinel"], {
            port,
            dir,
            role: "sentinel",
            logFile: join(dir, `sentinel-${port}.log`),
          });
          started.push(p);
          return p;
        }),
      )),
    );

    const topology = makeTopology(masterName, nodes, sentinels, stopAll);
    await Promise.all(nodes.slice(1).map((r) => topology.waitForReplicaSync(r, 5000)));
    await waitFor("every sentinel sees the master, its replicas and the other sentinels", 5000, async () => {
      for (const s of sentinels) {
        const master = (await command(s.port, ["SENTINEL", "get-master-addr-by-name", masterName])) as string[] | null;
        if (master?.[1] !== String(masterPort)) return false;
        const replicas = (await command(s.port, ["SENTINEL", "replicas", masterName])) as unknown[];
        const others = (await command(s.port, ["SENTINEL", "sentinels", masterName])) as unknown[];
        if (replicas.length !== replicaCount || others.length !== sentinels.length - 1) return false;
      }
      return true;
    });
    return topology;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function makeTopology(
  masterName: string,
  nodes: RedisProcess[],
  sentinels: RedisProcess[],
  stopAll: () => Promise<void>,
): SentinelTopology {
  let stopped = false;
  const byPort = (port: number): RedisProcess | undefined => nodes.find((n) => n.port === port);

  const askSentinels = async (): Promise<number> => {
    let lastErr: unknown;
    for (const s of sentinels) {
      if (!s.alive) continue;
      try {
        const addr = (await command(s.port, ["SENTINEL", "get-master-addr-by-name", masterName])) as string[] | null;
        if (addr?.[1] !== undefined) return Number(addr[1]);
      } catch (err) {
        lastErr = err;
      }
    }
    throw new Error(`no sentinel named a master${lastErr ? `: ${(lastErr as Error).message}` : ""}`);
  };

  const topology: SentinelTopology = {
    masterName,
    nodes,
    sentinels,
    url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(",")}/${masterName}`,
    async currentMaster() {
      const port = await askSentinels();
      const node = byPort(port);
      if (node === undefined) throw new Error(`sentinels name an unknown master port ${port}`);
      return node;
    },
    async currentReplicas() {
      const master = await topology.currentMaster();
      return nodes.filter((n) => n !== master && n.alive);
    },
    async killMaster() {
      const master = await topology.currentMaster();
      await master.kill();
      return master;
    },
    async waitForFailover(oldMaster, timeoutMs = 15_000) {
      let found: RedisProcess | undefined;
      await waitFor(`the sentinels promote a replica of ${oldMaster.port}`, timeoutMs, async () => {
        const node = byPort(await askSentinels());
        if (node === undefined || node === oldMaster || !node.alive) return false;
        if ((await info(node.port, "replication")).get("role") !== "master") return false;
        found = node;
        return true;
      }, 100);
      return found!;
    },
    async waitForReplicaSync(replica, timeoutMs = 10_000) {
      await waitFor(`replica ${replica.port} is in sync`, timeoutMs, async () => {
        const master = await topology.currentMaster();
        const r = await info(replica.port, "replication");
        return (
          r.get("role") === "slave" &&
          r.get("master_port") === String(master.port) &&
          r.get("master_link_status") === "up" &&
          r.get("master_sync_in_progress") === "0"
        );
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopAll();
    },
  };
  return topology;
}
