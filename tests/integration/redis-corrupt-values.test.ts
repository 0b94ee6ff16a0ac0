import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import Redis from "ioredis";
import { RedisSessionCache } from "../../src/cache";
import { createLogger } from "../../src/logger";
import { metrics } from "../../src/metrics";
import { newId, newSession } from "../contract/session-cache.contract";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

let server: RedisServerHandle;
let cache: RedisSessionCache;
const lines: string[] = [];
beforeAll(async () => {
  server = await startRedisServer();
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  cache = new RedisSessionCache({
    client: new Redis(server.url),
    keyPrefix: `k${randomBytes(3).toString("hex")}:`,
    logger: createLogger("warn", sink),
    metrics,
  });
});
afterAll(async () => {
  await cache?.close();
  await server?.stop();
});

async function corruptCount(): Promise<number> {
  const m = await metrics.cacheCorruptValues.get();
  return m.values.find((v) => v.labels.backend === "redis")?.value ?? 0;
}

const SECRET = "SECRET-VALUE-42";
const cases: Array<[string, (r: Redis, key: string) => Promise<unknown>]> = [
  ["not JSON", (r, k) => r.set(k, `{not json ${SECRET}`)],
  ["JSON of the wrong shape", (r, k) => r.set(k, JSON.stringify({ user: SECRET, createdAt: "yesterday" }))],
  ["JSON that is not an object", (r, k) => r.set(k, JSON.stringify([SECRET]))],
  ["a key of the wrong type (a list)", (r, k) => r.rpush(k, SECRET)],
  ["a key of the wrong type (a hash)", (r, k) => r.hset(k, "f", SECRET)],
  ["a session whose expiresAt has passed", (r, k) => r.set(k, JSON.stringify({ ...newSession(SECRET), expiresAt: Date.now() - 1000 }))],
];

describe("RedisSessionCache corrupted values", () => {
  it.each(cases)("%s: get returns null, removes the key, counts it, logs without the value", async (_label, write) => {
    const id = newId();
    const key = cache.keys.session(id);
    await write(cache.client as Redis, key);
    const before = await corruptCount();
    lines.length = 0;

    expect(await cache.get(id)).toBeNull();

    expect(await cache.client.exists(key)).toBe(0);
    expect(await corruptCount()).toBe(before + 1);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join("")).not.toContain(SECRET);
    expect(lines.join("")).not.toContain(id);
  });

  it("listUserSessions skips and prunes a corrupted member", async () => {
    const good = newId();
    const bad = newId();
    await cache.set(good, newSession("carol"), 60);
    await cache.set(bad, newSession("carol"), 60);
    await cache.client.set(cache.keys.session(bad), "garbage");
    expect((await cache.listUserSessions("carol")).map((e) => e.id)).toEqual([good]);
    expect(await cache.client.smembers(cache.keys.userIndex("carol"))).toEqual([good]);
  });
});
