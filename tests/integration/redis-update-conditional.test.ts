import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { RedisSessionCache } from "../../src/cache";
import { newId, newSession } from "../contract/session-cache.contract";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

let server: RedisServerHandle;
let cache: RedisSessionCache;
beforeAll(async () => {
  server = await startRedisServer();
  cache = new RedisSessionCache({ client: new Redis(server.url), keyPrefix: `x${randomBytes(3).toString("hex")}:` });
});
afterAll(async () => {
  await cache?.close();
  await server?.stop();
});

describe("RedisSessionCache update()", () => {
  it("never recreates a key deleted behind its back, even when racing with the delete", async () => {
    const ids = Array.from({ length: 200 }, () => newId());
    for (const id of ids) await cache.set(id, newSession("dave"), 60);
    const results = await Promise.all(
      ids.flatMap((id) => [cache.invalidate(id).then(() => "deleted"), cache.update(id, newSession("dave"), 60)]),
    );
    expect(results.length).toBe(400);
    for (const id of ids) expect(await cache.client.exists(cache.keys.session(id))).toBe(0);
  });

  it("sets the new TTL on the updated key", async () => {
    const id = newId();
    await cache.set(id, newSession("erin"), 5);
    expect(await cache.update(id, newSession("erin"), 500)).toBe(true);
    expect(await cache.client.pttl(cache.keys.session(id))).toBeGreaterThan(5000);
  });
});
