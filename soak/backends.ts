/**
 * The session backend of a run and the faults it can suffer. Redis processes are private (free loopback
 * ports, temp dirs, never 6379), started with the test helpers of tests/helpers/. Each fault injects,
 * repairs (restart, SIGCONT, bring the old master back as a replica) and waits until the topology is
 * whole again; it returns a line saying exactly what it did.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { startRedisServer, type RedisServerHandle } from "../tests/helpers/redis-server";
import { startSentinelTopology, type SentinelTopology } from "../tests/helpers/redis-sentinel";
import { startClusterTopology, type ClusterTopology } from "../tests/helpers/redis-cluster";
import { command, dataNodeArgs, info, spawnRedis, waitFor, type RedisProcess } from "../tests/helpers/redis-process";
import type { TopologyKind } from "./options";
import type { Rng } from "./rng";

const run = promisify(execFile);
/**
 * How long a repair may take to show (a master that comes back after a failover is turned into a replica
 * by the sentinels only at their next INFO round, ~10 s; much more on a loaded machine).
 */
const SETTLE_MS = 90_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fault: does its damage and its repair; resolves with what it did once the topology is whole. */
export type FaultAction = (rng: Rng, mark: { healed(): void }) => Promise<string>;

export interface Backend {
  readonly kind: TopologyKind;
  /** Environment for the service (BANGUI_REDIS_URL or BANGUI_SESSION_BACKEND). */
  readonly env: Record<string, string>;
  /** One line: ports and roles. */
  describe(): string;
  readonly faults: Readonly<Record<string, FaultAction>>;
  stop(): Promise<void>;
}

/** `dir`: the run's output dir (the ipc backend's sessions file goes there). */
export async function startBackend(kind: TopologyKind, dir: string): Promise<Backend> {
  switch (kind) {
    case "standalone":
      return standalone(await startRedisServer({ appendonly: true }));
    case "sentinel":
      return sentinel(await startSentinelTopology({ replicas: 2, downAfterMs: 1000, failoverTimeoutMs: 3000 }));
    case "cluster":
      return cluster(await startClusterTopology({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000 }));
    case "ipc":
      // With a sessions file, so a restarted instance keeps its sessions (and its logouts).
      return {
        kind,
        env: { BANGUI_SESSION_BACKEND: "ipc", BANGUI_SESSIONS_FILE: join(dir, "sessions.json") },
        describe: () => "ipc: sessions held by the primary, BANGUI_SESSIONS_FILE in the output dir",
        faults: {},
        stop: async () => {},
      };
  }
}

function standalone(r: RedisServerHandle): Backend {
  return {
    kind: "standalone",
    env: { BANGUI_REDIS_URL: r.url },
    describe: () => `redis-server ${r.port} (AOF, appendfsync always)`,
    faults: {
      async "redis-kill"(rng, mark) {
        const downMs = rng.int(500, 4000);
        await r.kill("SIGKILL");
        await sleep(downMs);
        await r.restart();
        mark.healed();
        return `SIGKILL redis ${r.port}, restarted (AOF) after ${downMs} ms`;
      },
      async "redis-stop"(rng, mark) {
        const stopMs = rng.int(500, 4000);
        r.pause();
        await sleep(stopMs);
        r.resume();
        mark.healed();
        return `SIGSTOP redis ${r.port} for ${stopMs} ms, then SIGCONT`;
      },
    },
    stop: () => r.stop(),
  };
}

/** Starts a data node again on its port and dir with `extra` args, and puts it in `nodes` in place of the dead one. */
async function respawn(nodes: readonly RedisProcess[], dead: RedisProcess, extra: string[]): Promise<RedisProcess> {
  const p = await spawnRedis([...dataNodeArgs(dead.port, dead.dir), ...extra], {
    port: dead.port,
    dir: dead.dir,
    role: "data",
    logFile: join(dead.dir, `redis-${dead.port}.log`),
  });
  const list = nodes as RedisProcess[];
  list[list.indexOf(dead)] = p;
  return p;
}

function sentinel(t: SentinelTopology): Backend {
  // Whole again: the master the sentinels name says role:master, and every other live node replicates
  // from it with its link up. Checked as one condition: during a failover the answer moves.
  const settle = async (): Promise<void> => {
    await waitFor("the sentinel topology is whole again", SETTLE_MS, async () => {
      const master = await t.currentMaster();
      if (!master.alive || (await info(master.port, "replication")).get("role") !== "master") return false;
      for (const n of t.nodes.filter((x) => x !== master && x.alive)) {
        const r = await info(n.port, "replication");
        if (r.get("role") !== "slave" || r.get("master_port") !== String(master.port)) return false;
        if (r.get("master_link_status") !== "up" || r.get("master_sync_in_progress") !== "0") return false;
      }
      return true;
    }, 200);
  };
  return {
    kind: "sentinel",
    env: { BANGUI_REDIS_URL: t.url },
    describe: () => `sentinel: data ${t.nodes.map((n) => n.port).join(",")}; sentinels ${t.sentinels.map((s) => s.port).join(",")}`,
    faults: {
      async "master-kill"(rng, mark) {
        const downMs = rng.int(500, 4000);
        const old = await t.killMaster();
        const promoted = await t.waitForFailover(old, SETTLE_MS);
        await sleep(downMs);
        await respawn(t.nodes, old, ["--replicaof", "127.0.0.1", String(promoted.port)]);
        mark.healed();
        await settle();
        return `SIGKILL master ${old.port}; sentinels promoted ${promoted.port}; old master back as its replica after ${downMs} ms more`;
      },
      async "master-stop"(rng, mark) {
        const stopMs = rng.int(500, 4000);
        const master = await t.currentMaster();
        master.signal("SIGSTOP");
        await sleep(stopMs);
        master.signal("SIGCONT");
        mark.healed();
        await settle();
        const now = await t.currentMaster();
        return `SIGSTOP master ${master.port} for ${stopMs} ms, then SIGCONT; master now ${now.port}`;
      },
      async "sentinel-failover"(_rng, mark) {
        const old = await t.currentMaster();
        const s = t.sentinels.find((x) => x.alive)!;
        await command(s.port, ["SENTINEL", "FAILOVER", t.masterName], 5000);
        const promoted = await t.waitForFailover(old, SETTLE_MS);
        mark.healed();
        await settle();
        return `SENTINEL FAILOVER: ${old.port} -> ${promoted.port}`;
      },
    },
    stop: () => t.stop(),
  };
}

function cluster(t: ClusterTopology): Backend {
  const clusterArgs = (p: RedisProcess): string[] => [
    "--cluster-enabled", "yes",
    "--cluster-config-file", join(p.dir, `nodes-${p.port}.conf`),
    "--cluster-node-timeout", "1000",
    "--cluster-replica-validity-factor", "0",
    "--cluster-announce-ip", "127.0.0.1",
  ];
  const healthy = () => t.waitForHealthy(60_000);
  return {
    kind: "cluster",
    env: { BANGUI_REDIS_URL: t.url },
    describe: () => `cluster: nodes ${t.nodes.map((n) => n.port).join(",")} (3 masters + 3 replicas)`,
    faults: {
      async "master-kill"(rng, mark) {
        const downMs = rng.int(500, 4000);
        const master = rng.pick(await t.masters());
        await master.process.kill();
        const promoted = await t.waitForFailover(master, 30_000);
        await sleep(downMs);
        await respawn(t.nodes, master.process, clusterArgs(master.process));
        mark.healed();
        await healthy();
        return `SIGKILL master ${master.port}; replica ${promoted.port} promoted; old master back (as a replica) after ${downMs} ms more`;
      },
      async "master-stop"(rng, mark) {
        const stopMs = rng.int(500, 4000);
        const master = rng.pick(await t.masters());
        master.process.signal("SIGSTOP");
        await sleep(stopMs);
        master.process.signal("SIGCONT");
        mark.healed();
        await healthy();
        return `SIGSTOP master ${master.port} for ${stopMs} ms, then SIGCONT`;
      },
      async "cluster-failover"(rng, mark) {
        const master = rng.pick(await t.masters());
        const replica = (await t.replicasOf(master))[0];
        if (replica === undefined) throw new Error(`master ${master.port} has no live replica`);
        await command(replica.port, ["CLUSTER", "FAILOVER"], 5000);
        await waitFor(`replica ${replica.port} becomes master`, 30_000, async () =>
          (await t.masters()).some((m) => m.port === replica.port), 100);
        mark.healed();
        await healthy();
        return `CLUSTER FAILOVER on replica ${replica.port} of master ${master.port}`;
      },
      async reshard(rng, mark) {
        const masters = await t.masters();
        const from = rng.pick(masters);
        const to = rng.pick(masters.filter((m) => m.id !== from.id));
        const slots = rng.int(50, 400);
        await run("redis-cli", [
          "--cluster", "reshard", `127.0.0.1:${from.port}`,
          "--cluster-from", from.id, "--cluster-to", to.id,
          "--cluster-slots", String(slots), "--cluster-yes",
          "--cluster-pipeline", "100",
        ], { timeout: 120_000 });
        mark.healed();
        await healthy();
        return `reshard ${slots} slots ${from.port} -> ${to.port} (redis-cli --cluster reshard: SETSLOT + MIGRATE)`;
      },
    },
    stop: () => t.stop(),
  };
}
