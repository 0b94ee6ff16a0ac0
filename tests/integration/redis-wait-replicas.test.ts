import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { RedisSessionCache, SessionBackendUnavailableError } from "../../src/cache";
import { newId, newSession } from "../contract/session-cache.contract";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { waitFor } from "../helpers/redis-process";

let master: RedisServerHandle;
let replica: RedisServerHandle;
let client: Redis;
beforeAll(async () => {
  master = await startRedisServer();
  replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(master.port)] });
  client = new Redis(master.url);
  await waitFor("the replica is in sync", 10_000, async () => {
    const info = await client.info("replication");
    return /connected_slaves:1/.test(info) && /state=online/.test(info);
  });
});
afterAll(async () => {
  try {
    replica?.resume();
  } catch {
    // not a local process
  }
  client?.disconnect();
  await replica?.stop();
  await master?.stop();
});

function cacheWith(waitReplicas: "auto" | number): RedisSessionCache {
  return new RedisSessionCache({
    client,
    keyPrefix: `w${randomBytes(3).toString("hex")}:`,
    waitReplicas,
    waitTimeoutMs: 300,
    ownsClient: false,
  });
}

describe("RedisSessionCache WAIT after invalidation", () => {
  it.each(["auto", 1] as const)("waitReplicas=%s: invalidate resolves once the replica acknowledged", async (n) => {
    const cache = cacheWith(n);
    const id = newId();
    await cache.set(id, newSession("frank"), 60);
    await cache.invalidate(id);
    expect(await cache.get(id)).toBeNull();
    const onReplica = new Redis(replica.url);
    try {
      expect(await onReplica.exists(cache.keys.session(id))).toBe(0);
    } finally {
      onReplica.disconnect();
    }
    await cache.set(newId(), newSession("frank"), 60);
    expect(await cache.invalidateUser("frank")).toBe(1);
  });

  it("invalidate rejects with SessionBackendUnavailableError when the replica is paused past waitTimeoutMs", async () => {
    const cache = cacheWith("auto");
    const id = newId();
    await cache.set(id, newSession("grace"), 60);
    // A second session: invalidate(id) takes its own id out of the index, invalidateUser needs one left.
    await cache.set(newId(), newSession("grace"), 60);
    replica.pause();
    try {
      await expect(cache.invalidate(id)).rejects.toBeInstanceOf(SessionBackendUnavailableError);
      await expect(cache.invalidateUser("grace")).rejects.toBeInstanceOf(SessionBackendUnavailableError);
    } finally {
      replica.resume();
    }
  });

  it("waitReplicas more than connected rejects rather than pretending", async () => {
    const cache = cacheWith(2);
    const id = newId();
    await cache.set(id, newSession("heidi"), 60);
    await expect(cache.invalidate(id)).rejects.toThrow(/did not confirm/);
  });
});
