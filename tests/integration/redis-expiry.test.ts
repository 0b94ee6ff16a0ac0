import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { RedisSessionCache } from "../../src/cache";
import { newId, newSession } from "../contract/session-cache.contract";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

let server: RedisServerHandle;
let cache: RedisSessionCache;
beforeAll(async () => {
  server = await startRedisServer();
  cache = new RedisSessionCache({ client: new Redis(server.url), keyPrefix: `e${randomBytes(3).toString("hex")}:` });
});
afterAll(async () => {
  await cache?.close();
  await server?.stop();
});

describe("RedisSessionCache expiry", () => {
  it("a session set with a 1 s TTL is gone from Redis after ~1.5 s", async () => {
    const id = newId();
    await cache.set(id, newSession("alice"), 1);
    expect(await cache.get(id)).not.toBeNull();
    const pttl = await cache.client.pttl(cache.keys.session(id));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await cache.get(id)).toBeNull();
    expect(await cache.client.exists(cache.keys.session(id))).toBe(0);
  });

  it("the user index lives at least as long as the user's longest session", async () => {
    const u = `u${randomBytes(3).toString("hex")}`;
    await cache.set(newId(), newSession(u), 100);
    await cache.set(newId(), newSession(u), 10);
    const pttl = await cache.client.pttl(cache.keys.userIndex(u));
    expect(pttl).toBeGreaterThan(10_000);
    expect(pttl).toBeLessThanOrEqual(100_000);
  });
});
