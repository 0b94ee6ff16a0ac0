import Redis from "ioredis";
import type { NearCache } from "../../src/cache";
import { requireOwnedServer, startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { commandCalls, expectLocalHits, makeNear, newId, session, uniquePrefix, until } from "./near-cache-helpers";

let server: RedisServerHandle;
let admin: Redis;
let a: NearCache;
let b: NearCache;

beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});
beforeEach(async () => {
  const prefix = uniquePrefix();
  a = makeNear(server.url, prefix);
  b = makeNear(server.url, prefix);
  await until(() => a.tracking && b.tracking, "tracking on both instances");
});
afterEach(async () => {
  await a.close();
  await b.close();
});

async function hits(near: NearCache): Promise<number> {
  return near.stats.hits;
}

/**
 * True when a read of `id` through `near` is a local hit (asserted: no GET reaches Redis). A read that is
 * not (the first, or one whose fill an invalidation of the key's own SET voided) fills the cache.
 */
async function cachedIn(near: NearCache, id: string): Promise<boolean> {
  const before = await hits(near);
  const gets = await commandCalls(admin, "get");
  const value = await near.get(id);
  if ((await hits(near)) === before) return false;
  expect(value).not.toBeNull();
  expect(await commandCalls(admin, "get")).toBe(gets);
  return true;
}

function prefixOf(near: NearCache): string {
  return near.remote.keys.sessionPrefix;
}

describe("near-cache coherence between two instances on one Redis", () => {
  it("serves a repeated read from the local layer", async () => {
    const id = newId();
    await a.set(id, session("alice"), 60);
    // The SET's own invalidation reaches b's subscriber on another connection and may land after b's first
    // read has filled the local layer (evicting it: safe, but a miss next time): read until one is a hit.
    await until(() => cachedIn(b, id), "b to cache the session");
    const value = await expectLocalHits(admin, b, 1, () => b.get(id));
    expect(value).toMatchObject({ username: "alice" });
  });

  it("a local hit is the validated, frozen object it stored: not parsed again, shared by every reader", async () => {
    const id = newId();
    await a.set(id, session("alice"), 60);
    await until(() => cachedIn(b, id), "b to cache the session");
    const first = await expectLocalHits(admin, b, 1, () => b.get(id));
    const second = await expectLocalHits(admin, b, 1, () => b.get(id));
    expect(second).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(() => {
      (first as { username: string }).username = "mallory";
    }).toThrow(TypeError);
    expect((await b.get(id))?.username).toBe("alice");
  });

  it("an invalidate on one instance is seen by the other as soon as it resolves, across 200 sessions", async () => {
    const ids = Array.from({ length: 200 }, () => newId());
    await Promise.all(ids.map((id, i) => a.set(id, session(`user${i}`), 60)));
    // Cached once the key's own SET invalidation is behind us (it may evict a first fill).
    for (const id of ids) await until(() => cachedIn(b, id), "b to cache the session");
    await expectLocalHits(admin, b, ids.length, async () => {
      for (const id of ids) expect(await b.get(id)).not.toBeNull(); // now local hits
    });
    let stale = 0;
    for (const id of ids) {
      await a.invalidate(id);
      if ((await b.get(id)) !== null) stale++;
    }
    expect(stale).toBe(0);
  });

  it("a set and an update on one instance replace what the other has cached", async () => {
    const id = newId();
    await a.set(id, session("bob", { ip: "10.0.0.1" }), 60);
    await until(() => cachedIn(b, id), "b to cache the session");
    await a.set(id, session("bob", { ip: "10.0.0.2" }), 60);
    expect(await b.get(id)).toMatchObject({ ip: "10.0.0.2" });
    await until(() => cachedIn(b, id), "b to cache the new value");
    expect(await a.update(id, session("bob", { ip: "10.0.0.3" }), 60)).toBe(true);
    expect(await b.get(id)).toMatchObject({ ip: "10.0.0.3" });
  });

  it("invalidateUser on one instance ends the user's sessions on the other", async () => {
    const ids = [newId(), newId(), newId()];
    for (const id of ids) await a.set(id, session("carol"), 60);
    for (const id of ids) await until(() => cachedIn(b, id), "b to cache the session");
    expect(await a.invalidateUser("carol")).toBe(3);
    for (const id of ids) expect(await b.get(id)).toBeNull();
  });

  it("an entry expires locally when its key expires in Redis", async () => {
    const id = newId();
    await a.set(id, session("dave"), 1);
    await until(() => cachedIn(b, id), "b to cache the session");
    await until(async () => (await admin.exists(`${prefixOf(b)}${id}`)) === 0, "the key to expire in Redis");
    expect(await b.get(id)).toBeNull();
  });

  it("FLUSHDB evicts every local entry", async () => {
    requireOwnedServer(server, "runs FLUSHDB"); // never on a REDIS_URL server someone else owns
    const ids = Array.from({ length: 20 }, () => newId());
    for (const id of ids) await a.set(id, session("erin"), 60);
    for (const id of ids) await until(() => cachedIn(b, id), "b to cache the session");
    await admin.flushdb();
    await until(async () => (await b.get(ids[0]!)) === null, "the flush to reach the other instance", 2000);
    for (const id of ids) expect(await b.get(id)).toBeNull();
  });

  it("concurrent misses for one id are collapsed into one Redis read", async () => {
    const id = newId();
    await a.set(id, session("frank"), 60);
    const before = await commandCalls(admin, "get");
    const results = await Promise.all(Array.from({ length: 10 }, () => b.get(id)));
    expect(results.every((r) => r?.username === "frank")).toBe(true);
    expect((await commandCalls(admin, "get")) - before).toBe(1);
  });

  it("a read in flight when an invalidation of its id arrives does not store its reply", async () => {
    const id = newId();
    await a.set(id, session("grace"), 60);
    // Hold b's replies in its socket so that the invalidation (on b's subscriber) overtakes them.
    const stream = (b.remote.client as unknown as { stream: NodeJS.ReadableStream }).stream;
    stream.pause();
    const gets = await commandCalls(admin, "get");
    const inFlight = b.get(id);
    // The GET reaches Redis and is answered (the reply held in b's paused socket).
    await until(async () => (await commandCalls(admin, "get")) > gets, "b's GET to run");
    const invalidations = b.stats.invalidations;
    await a.invalidate(id);
    await until(
      async () => b.stats.invalidations >= invalidations + 1,
      "b's subscriber to receive the invalidation",
    );
    stream.resume();
    expect(await inFlight).toMatchObject({ username: "grace" }); // the value when the read was served
    expect(await b.get(id)).toBeNull(); // but it was not cached
  });
});
