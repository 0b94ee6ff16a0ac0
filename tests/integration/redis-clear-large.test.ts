import Redis from "ioredis";
import { RedisSessionCache } from "../../src/cache";
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

describe("RedisSessionCache clear()", () => {
  it("removes 20 000 keys of its prefix in batches and nothing else", async () => {
    const cache = new RedisSessionCache({ client: raw, keyPrefix: "big:", ownsClient: false });
    for (let start = 0; start < 20_000; start += 2000) {
      const p = raw.pipeline();
      for (let i = start; i < start + 2000; i++) p.set(`big:s:${i.toString(16).padStart(64, "0")}`, "{}", "EX", 600);
      await p.exec();
    }
    await raw.set("other:keep", "1");
    expect(await raw.dbsize()).toBe(20_001);

    await cache.clear();

    expect(await raw.dbsize()).toBe(1);
    expect(await raw.get("other:keep")).toBe("1");
  });
});
