/** The RedisSessionStore contract on a Redis Cluster (3 masters): scans every master, never CROSSSLOT. */
import { createRedisClient } from "../../src/cache/factory";
import { parseRedisUrl } from "../../src/redis-url";
import { startClusterTopology, type ClusterTopology } from "../helpers/redis-cluster";
import { describeStoreContract } from "./store.contract";

let topo: ClusterTopology;
beforeAll(async () => {
  topo = await startClusterTopology({ replicasPerMaster: 0 });
});
afterAll(async () => {
  await topo?.stop();
});

const timeouts = { redisCommandTimeoutMs: 1000, redisConnectTimeoutMs: 2000 };
describeStoreContract("cluster", () => createRedisClient(parseRedisUrl(topo.url), timeouts), { nearCache: true });
