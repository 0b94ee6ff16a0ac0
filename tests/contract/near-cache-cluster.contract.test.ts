/** The SessionCache contract on a Redis Cluster with the near-cache on (tracking per master), built by the real factory. */
import type { NearCache } from "../../src/cache";
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
  "near(redis) on cluster",
  async () => {
    const backend = backendFor(topo.url, { BANGUI_NEAR_CACHE: "true", BANGUI_REDIS_WAIT_REPLICAS: "0" });
    await eventually(() => backend.cache.ping());
    const near = backend.cache as NearCache;
    // The contract runs against the local layer, not a bypass: tracking on every master first.
    for (let i = 0; i < 1000 && !near.tracking; i++) await new Promise((r) => setTimeout(r, 10));
    if (!near.tracking) throw new Error("near-cache tracking was not established on every master");
    return backend.cache;
  },
  { stores: true },
);
