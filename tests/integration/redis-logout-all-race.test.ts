import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { RedisSessionCache } from "../../src/cache";
import { newId, newSession } from "../contract/session-cache.contract";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";

// Found by `npm run soak` (standalone, seed 1): a login racing a logout-all left a session that no later
// logout-all could end, because logout-all deleted the user's whole index after reading it.
let server: RedisServerHandle;
const clients: Redis[] = [];
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server?.stop();
});

describe("RedisSessionCache.invalidateUser racing a login", () => {
  it("a login landing between logout-all's read of the index and its end stays indexed, so the next logout-all ends it", async () => {
    const prefix = `r${randomBytes(3).toString("hex")}:`;
    const client = new Redis(server.url);
    const other = new Redis(server.url);
    clients.push(client, other);
    const cache = new RedisSessionCache({ client, keyPrefix: prefix, ownsClient: false });
    const racer = new RedisSessionCache({ client: other, keyPrefix: prefix, ownsClient: false });
    const before = newId();
    const late = newId();
    await cache.set(before, newSession("alice"), 60);

    // Real Redis, real commands; only the interleaving is forced: the racing login's writes (another
    // worker's connection) land right after logout-all has read the index.
    const realSmembers = client.smembers.bind(client) as (key: string) => Promise<string[]>;
    (client as unknown as { smembers: (key: string) => Promise<string[]> }).smembers = async (key) => {
      const ids = await realSmembers(key);
      await racer.set(late, newSession("alice"), 60);
      return ids;
    };
    try {
      await cache.invalidateUser("alice");
    } finally {
      delete (client as unknown as { smembers?: unknown }).smembers;
    }

    expect(await cache.get(before)).toBeNull();
    // The racing login may outlive this logout-all (its SADD came after the read), but it must stay visible
    // to the user and to the next logout-all.
    expect((await cache.listUserSessions("alice")).map((s) => s.id)).toContain(late);
    await cache.invalidateUser("alice");
    expect(await cache.get(late)).toBeNull();
  });

  it("a session whose key is written after a logout-all read its id (cluster: key and index on different nodes) is still ended by the next logout-all", async () => {
    const prefix = `r${randomBytes(3).toString("hex")}:`;
    const client = new Redis(server.url);
    const other = new Redis(server.url);
    clients.push(client, other);
    const cache = new RedisSessionCache({ client, keyPrefix: prefix, ownsClient: false });
    const racer = new RedisSessionCache({ client: other, keyPrefix: prefix, ownsClient: false });
    const late = newId();

    // Forced interleaving, as two cluster nodes can order it: the racing login's SET is held back until the
    // logout-all has finished; whatever else the login sends meanwhile goes through.
    type Fn = (...args: unknown[]) => Promise<unknown>;
    const hooked = other as unknown as { set: Fn; sadd: Fn };
    const realSet = other.set.bind(other) as unknown as Fn;
    const realSadd = other.sadd.bind(other) as unknown as Fn;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let setCalled!: () => void;
    const setRequested = new Promise<void>((r) => (setCalled = r));
    let saddDone: Promise<unknown> | undefined;
    hooked.set = async (...args) => {
      setCalled();
      await released;
      return realSet(...args);
    };
    hooked.sadd = (...args) => (saddDone = realSadd(...args));
    const login = racer.set(late, newSession("alice"), 60);
    await setRequested;
    await saddDone; // sent with the SET (before the fix): it lands before the logout-all reads the index
    await cache.invalidateUser("alice");
    release();
    await login;
    delete (hooked as { set?: unknown }).set;
    delete (hooked as { sadd?: unknown }).sadd;

    await cache.invalidateUser("alice");
    expect(await cache.get(late)).toBeNull();
  });
});
