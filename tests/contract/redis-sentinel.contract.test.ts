/** The SessionCache contract on a Redis Sentinel topology, built by the real factory from a redis+sentinel:// URL. */
import { startSentinelTopology, type SentinelTopology } from "../helpers/redis-sentinel";
import { backendFor, eventually } from "../helpers/scale-out";
import { describeSessionCacheContract } from "./session-cache.contract";

let topo: SentinelTopology;
beforeAll(async () => {
  topo = await startSentinelTopology();
});
afterAll(async () => {
  await topo?.stop();
});

describeSessionCacheContract(
  "redis (sentinel)",
  async () => {
    // WAIT on, as in production: every logout of the contract also waits for the replica.
    const backend = backendFor(topo.url, { BANGUI_REDIS_WAIT_REPLICAS: "auto" });
    await eventually(() => backend.cache.ping());
    return backend.cache;
  },
  { stores: true },
);
