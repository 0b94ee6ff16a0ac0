import Redis from "ioredis";
import { RedisSessionCache } from "../../src/cache";
import { newId, newSession } from "../contract/session-cache.contract";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

let server: RedisServerHandle;
let a: RedisSessionCache;
let b: RedisSessionCache;
let raw: Redis;
beforeAll(async () => {
  server = await startRedisServer();
  raw = new Redis(server.url);
  a = new RedisSessionCache({ client: raw, keyPrefix: "app-a:", ownsClient: false });
  b = new RedisSessionCache({ client: raw, keyPrefix: "app-b:", ownsClient: false });
});
afterAll(async () => {
  raw?.disconnect();
  await server?.stop();
});

describe("RedisSessionCache key prefixes", () => {
  it("clear() of one prefix leaves the other prefix and foreign keys untouched", async () => {
    const idA = newId();
    const idB = newId();
    await a.set(idA, newSession("alice"), 60);
    await b.set(idB, newSession("alice"), 60);
    await raw.set("foreign:key", "x");
    await raw.set("app-a", "no colon: not under the prefix");
    await raw.set("app-a*", "glob characters");

    await a.clear();

    expect(await a.get(idA)).toBeNull();
    expect(await a.listUserSessions("alice")).toEqual([]);
    expect(await b.get(idB)).not.toBeNull();
    expect((await b.listUserSessions("alice")).map((e) => e.id)).toEqual([idB]);
    expect(await raw.get("foreign:key")).toBe("x");
    expect(await raw.exists("app-a", "app-a*")).toBe(2);
    expect(await raw.keys("app-a:*")).toEqual([]);
  });

  it("a session of one prefix is not visible through the other", async () => {
    const id = newId();
    await a.set(id, newSession("bob"), 60);
    expect(await b.get(id)).toBeNull();
    expect(await b.listUserSessions("bob")).toEqual([]);
  });
});
