import { randomBytes } from "node:crypto";
import { InMemorySessionCache, RedisSessionCache, createSessionBackend } from "../../src/cache";
import { loadConfig } from "../../src/config";
import { silentLogger } from "../../src/logger";
import { metrics } from "../../src/metrics";
import { newId, newSession } from "../contract/session-cache.contract";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { waitFor } from "../helpers/redis-process";

let server: RedisServerHandle;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

async function backendUp(): Promise<number> {
  return (await metrics.backendUp.get()).values[0]?.value ?? -1;
}

describe("createSessionBackend", () => {
  it("without BANGUI_REDIS_URL builds the in-memory cache with its size bound and no Redis client", async () => {
    const backend = createSessionBackend(loadConfig({ BANGUI_MEMORY_MAX_SESSIONS: "7" }), { logger: silentLogger() });
    expect(backend.cache).toBeInstanceOf(InMemorySessionCache);
    expect(backend.redis).toBeUndefined();
    await backend.close();
  });

  it("with a redis:// URL builds a working Redis cache under BANGUI_KEY_PREFIX and tracks backend up/down", async () => {
    const prefix = `f${randomBytes(3).toString("hex")}:`;
    const config = loadConfig({
      BANGUI_REDIS_URL: server.url,
      BANGUI_KEY_PREFIX: prefix,
      BANGUI_NEAR_CACHE: "false",
      BANGUI_REDIS_WAIT_REPLICAS: "auto",
    });
    const backend = createSessionBackend(config, { logger: silentLogger(), registry: metrics.registry });
    try {
      expect(backend.redis).toBeDefined();
      await waitFor("the client is ready", 5000, async () => backend.cache.ping().then(() => true));
      expect(await backendUp()).toBe(1);
      const id = newId();
      await backend.cache.set(id, newSession("kim"), 60);
      expect(await backend.cache.get(id)).not.toBeNull();
      expect(await backend.redis!.exists(`${prefix}s:${id}`)).toBe(1);
      // "auto" with no replica connected: invalidate does not wait and does not fail.
      await backend.cache.invalidate(id);
      expect(await backend.cache.get(id)).toBeNull();
      if (!config.nearCache) expect(backend.cache).toBeInstanceOf(RedisSessionCache);
    } finally {
      await backend.close();
      await backend.close();
    }
    await waitFor("the gauge reports the backend down", 2000, async () => (await backendUp()) === 0);
  });
});
