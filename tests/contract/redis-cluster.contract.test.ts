/** The SessionCache contract on a Redis Cluster (3 masters + 3 replicas), built by the real factory from a redis+cluster:// URL. */
import { startClusterTopology, type ClusterTopology } from "../helpers/redis-cluster";
import { backendFor, eventually } from "../helpers/scale-out";
import { describeSessionCacheContract } from "./session-cache.contract";

let topo: ClusterTopology;
beforeAll(async () => {
  topo = await startClusterTopology();
});
afterAll(async () => {
  await topo?.stop();
});

describeSessionCacheContract(
  "redis (cluster)",
  async () => {
    // WAIT on, as in production: every logout of the contract also waits for the replica of its master.
    const backend = backendFor(topo.url, { BANGUI_REDIS_WAIT_REPLICAS: "auto" });
    await eventually(() => backend.cache.ping());
    return backend.cache;
  },
  { stores: true },
);
