import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { RedisSessionCache } from "../../src/cache";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { describeSessionCacheContract } from "./session-cache.contract";

let server: RedisServerHandle;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

describeSessionCacheContract(
  "redis",
  () =>
    new RedisSessionCache({
      client: new Redis(server.url, { enableOfflineQueue: true, maxRetriesPerRequest: 1 }),
      keyPrefix: `c${randomBytes(4).toString("hex")}:`,
    }),
  { stores: true },
);
