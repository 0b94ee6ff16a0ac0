/**
 * What a logout leaves behind in Redis: a single invalidate takes its id out of the user's index (no
 * index that only grows until its TTL), and clear() removes only this prefix's own key shapes, not
 * another tenant whose prefix merely starts with ours.
 */
import Redis from "ioredis";
import { createKeySpace, RedisSessionCache } from "../../src/cache";
import { newId, newSession } from "../contract/session-cache.contract";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

let server: RedisServerHandle;
let raw: Redis;
beforeAll(async () => {
  server = await startRedisServer();
  raw = new Redis(server.url);
});
afterAll(async () => {
  raw?.disconnect();
  await server?.stop();
});

const cacheWith = (keyPrefix: string) => new RedisSessionCache({ client: raw, keyPrefix, ownsClient: false });

describe("RedisSessionCache index hygiene", () => {
  it("invalidate (logout, revoke) removes the id from the user's index", async () => {
    const cache = cacheWith("hyg1:");
    const [a, b] = [newId(), newId()];
    await cache.set(a, newSession("ivy"), 60);
    await cache.set(b, newSession("ivy"), 60);
    await cache.invalidate(a);
    expect(await raw.smembers(createKeySpace("hyg1:").userIndex("ivy"))).toEqual([b]);
    await cache.invalidate(b);
    expect(await raw.exists(createKeySpace("hyg1:").userIndex("ivy"))).toBe(0);
  });

  it("invalidate of an unparseable value still removes the key", async () => {
    const cache = cacheWith("hyg2:");
    const id = newId();
    await raw.set(createKeySpace("hyg2:").session(id), "not json", "EX", 60);
    await cache.invalidate(id);
    expect(await raw.exists(createKeySpace("hyg2:").session(id))).toBe(0);
  });

  it("clear() of prefix 'bangui:' leaves the tenants 'bangui:x' and 'bangui:s:' alone", async () => {
    const tenants = ["bangui:", "bangui:x", "bangui:s:"];
    const caches = tenants.map(cacheWith);
    const ids = tenants.map(() => newId());
    for (const [i, cache] of caches.entries()) await cache.set(ids[i]!, newSession("jack"), 60);
    await raw.set(`bangui:login-fail:${"a".repeat(64)}`, "1", "EX", 60);
    await raw.set(`bangui:xlogin-fail:${"a".repeat(64)}`, "1", "EX", 60);
    const before = await raw.keys("bangui:*");

    await caches[0]!.clear();

    const after = await raw.keys("bangui:*");
    const own = createKeySpace("bangui:");
    const expected = before.filter(
      (k) => k !== own.session(ids[0]!) && k !== own.userIndex("jack") && k !== `bangui:login-fail:${"a".repeat(64)}`,
    );
    expect(after.sort()).toEqual(expected.sort());
    expect(after).toHaveLength(5); // 'bangui:x' and 'bangui:s:': a session and an index each, + a counter
    expect(await caches[1]!.get(ids[1]!)).not.toBeNull();
    expect(await caches[2]!.get(ids[2]!)).not.toBeNull();
    expect((await caches[2]!.listUserSessions("jack")).map((e) => e.id)).toEqual([ids[2]]);
  });
});
