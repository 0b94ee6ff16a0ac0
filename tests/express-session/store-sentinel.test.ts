/** The RedisSessionStore contract on a Sentinel topology (client from the real factory, redis+sentinel://). */
import type { Redis } from "ioredis";
import { createRedisClient } from "../../src/cache/factory";
import { parseRedisUrl } from "../../src/redis-url";
import { startSentinelTopology, type SentinelTopology } from "../helpers/redis-sentinel";
import { describeStoreContract } from "./store.contract";

let topo: SentinelTopology;
beforeAll(async () => {
  topo = await startSentinelTopology();
});
afterAll(async () => {
  await topo?.stop();
});

const timeouts = { redisCommandTimeoutMs: 1000, redisConnectTimeoutMs: 2000 };
describeStoreContract("sentinel", () => createRedisClient(parseRedisUrl(topo.url), timeouts) as Redis, { nearCache: true });
