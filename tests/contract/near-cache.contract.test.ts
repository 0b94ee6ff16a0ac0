import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { NearCache, RedisSessionCache } from "../../src/cache";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { describeSessionCacheContract } from "./session-cache.contract";

let server: RedisServerHandle;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

/** Resolves once tracking is up, so the contract runs against the local layer, not a bypass. */
async function tracked(cache: NearCache): Promise<NearCache> {
  for (let i = 0; i < 200 && !cache.tracking; i++) await new Promise((r) => setTimeout(r, 10));
  if (!cache.tracking) throw new Error("near-cache tracking was not established");
  return cache;
}

describeSessionCacheContract(
  "near(redis)",
  () =>
    tracked(
      new NearCache({
        remote: new RedisSessionCache({
          client: new Redis(server.url, { maxRetriesPerRequest: 1 }),
          keyPrefix: `c${randomBytes(4).toString("hex")}:`,
        }),
        createSubscriber: () => new Redis(server.url, { protocol: 2, maxRetriesPerRequest: 1, commandTimeout: 500 }),
      }),
    ),
  { stores: true },
);
