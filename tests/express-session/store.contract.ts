/**
 * The RedisSessionStore contract, run on standalone, Sentinel and Cluster (one *.test.ts each).
 * `makeClient` returns a fresh ioredis client on the topology (fail-fast options); `admin` inspects Redis.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { Registry } from "prom-client";
import { isCluster } from "../../src/cache/is-cluster";
import { RedisSessionStore, type RedisSessionStoreOptions, type StoreSessionData } from "../../src/express-session";
import { SessionBackendUnavailableError } from "../../src/errors";

export type ClientFactory = () => Redis | Cluster;

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

export function newSid(): string {
  return randomBytes(24).toString("base64url");
}

export function sessionData(extra: Record<string, unknown> = {}, maxAgeMs = 600_000): StoreSessionData {
  return {
    cookie: { originalMaxAge: maxAgeMs, expires: new Date(Date.now() + maxAgeMs).toISOString(), httpOnly: true, path: "/" },
    ...extra,
  };
}

/** Every key under `prefix` on every master. */
export async function keysUnder(client: Redis | Cluster, prefix: string): Promise<string[]> {
  const nodes = isCluster(client) ? client.nodes("master") : [client];
  const out: string[] = [];
  for (const node of nodes) out.push(...(await node.keys(`${prefix}*`)));
  return out;
}

/** Resolves once the client is ready (the test clients have no offline queue). */
export function ready(client: Redis | Cluster): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("client not ready after 20 s")), 20_000);
    client.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export function describeStoreContract(name: string, makeClient: ClientFactory, opts: { nearCache: boolean }): void {
  describe(`RedisSessionStore contract: ${name}`, () => {
    let client: Redis | Cluster;
    let admin: Redis | Cluster;
    const stores: RedisSessionStore[] = [];
    const make = (o: Partial<RedisSessionStoreOptions> = {}) => {
      const s = new RedisSessionStore({ client, prefix: `st${randomBytes(3).toString("hex")}:`, nearCache: opts.nearCache, ...o });
      stores.push(s);
      return s;
    };

    beforeAll(async () => {
      client = makeClient();
      admin = makeClient();
      await Promise.all([ready(client), ready(admin)]);
    });
    afterAll(async () => {
      await Promise.all(stores.map((s) => s.close()));
      client?.disconnect();
      admin?.disconnect();
    });

    it("get returns what set stored, under <prefix><sha256(sid)>: no raw session id in any key or value", async () => {
      const store = make();
      const sid = newSid();
      const data = sessionData({ user: { name: "ana", roles: ["a"] } });
      await store.set(sid, data);
      expect(await store.get(sid)).toEqual(data);
      const keys = await keysUnder(admin, store.keys.prefix);
      expect(keys).toEqual([`${store.keys.prefix}${sha(sid)}`]);
      expect(keys.join()).not.toContain(sid);
      expect(await admin.get(keys[0]!)).not.toContain(sid);
    });

    it("get of an unknown session calls back once with (null, null); without a callback it resolves null", async () => {
      const store = make();
      const calls: unknown[][] = [];
      await new Promise<void>((resolve) => {
        store.get(newSid(), (...args: unknown[]) => {
          calls.push(args);
          resolve();
        });
      });
      expect(calls).toEqual([[null, null]]);
      await expect(store.get(newSid())).resolves.toBeNull();
    });

    it("destroy removes the session; set with a past cookie.expires removes it too", async () => {
      const store = make();
      const [a, b] = [newSid(), newSid()];
      await store.set(a, sessionData());
      await store.set(b, sessionData());
      await store.destroy(a);
      expect(await store.get(a)).toBeNull();
      await store.set(b, { cookie: { expires: new Date(Date.now() - 1000).toISOString() } });
      expect(await store.get(b)).toBeNull();
      expect(await keysUnder(admin, store.keys.prefix)).toEqual([]);
    });

    it("the key lives until cookie.expires, or ttlSeconds for a browser-session cookie", async () => {
      const store = make({ ttlSeconds: 50 });
      const [a, b] = [newSid(), newSid()];
      await store.set(a, sessionData({}, 120_000));
      const browserSession: StoreSessionData = { cookie: { expires: null, originalMaxAge: null } };
      await store.set(b, browserSession);
      const pa = await admin.pttl(store.keys.session(a));
      const pb = await admin.pttl(store.keys.session(b));
      expect(pa).toBeGreaterThan(100_000);
      expect(pa).toBeLessThanOrEqual(120_000);
      expect(pb).toBeGreaterThan(40_000);
      expect(pb).toBeLessThanOrEqual(50_000);
    });

    it("touch never recreates a destroyed session", async () => {
      const store = make();
      const sid = newSid();
      await store.set(sid, sessionData());
      await store.destroy(sid);
      await store.touch(sid, sessionData({}, 900_000));
      expect(await admin.exists(store.keys.session(sid))).toBe(0);
      expect(await store.get(sid)).toBeNull();
    });

    it("touch extends the key's life, but at most once per fraction of the lifetime", async () => {
      const store = make({ touchAfterFraction: 0.1 });
      const sid = newSid();
      await store.set(sid, sessionData({}, 600_000));
      const key = store.keys.session(sid);
      // Right after the set: nothing to extend, no write.
      await admin.pexpire(key, 300_000);
      await store.touch(sid, sessionData({}, 600_000));
      expect(await admin.pttl(key)).toBeLessThanOrEqual(300_000);
      // A touch that moves the expiry by more than 10% of 600 s: written.
      await store.touch(sid, sessionData({}, 700_000));
      const extended = await admin.pttl(key);
      expect(extended).toBeGreaterThan(600_000);
      // And again right after: within the fraction, not written.
      await admin.pexpire(key, 300_000);
      await store.touch(sid, sessionData({}, 700_000));
      expect(await admin.pttl(key)).toBeLessThanOrEqual(300_000);
    });

    it("a value that does not parse is no session: removed, counted, never an error", async () => {
      const registry = new Registry();
      const store = make({ registry });
      const cases = ["{not json", JSON.stringify([1, 2]), JSON.stringify({ user: "x" }), JSON.stringify({ cookie: { expires: "never" } })];
      for (const raw of cases) {
        const sid = newSid();
        await admin.set(store.keys.session(sid), raw, "PX", 60_000);
        await expect(store.get(sid)).resolves.toBeNull();
        expect(await admin.exists(store.keys.session(sid))).toBe(0);
      }
      const wrongType = newSid();
      await admin.sadd(store.keys.session(wrongType), "x");
      await expect(store.get(wrongType)).resolves.toBeNull();
      expect(await admin.exists(store.keys.session(wrongType))).toBe(0);
      const counted = (await registry.getSingleMetric("bangui_cache_corrupt_values_total")!.get()).values;
      expect(counted.find((v) => v.labels.backend === "express-session")?.value).toBe(cases.length + 1);
    });

    it("all, length and ids see every session on every master; clear removes only this prefix", async () => {
      const store = make({ userOf: (s) => s.user as string | undefined });
      const other = make();
      const sids = Array.from({ length: 40 }, () => newSid());
      await Promise.all(sids.map((sid, i) => store.set(sid, sessionData({ user: `u${i % 3}`, n: i }))));
      const keep = newSid();
      await other.set(keep, sessionData());
      await admin.set(`${store.keys.prefix}not-a-session`, "x");
      if (isCluster(admin)) {
        const masters = new Set(await Promise.all(sids.map((s) => (admin as Cluster).slots[keySlotOf(store.keys.session(s))]?.[0])));
        expect(masters.size).toBeGreaterThan(1);
      }
      expect(await store.length()).toBe(40);
      expect(new Set(await store.ids())).toEqual(new Set(sids.map(sha)));
      const all = (await store.all())!;
      expect(all.map((s) => s.n).sort((a, b) => Number(a) - Number(b))).toEqual(sids.map((_, i) => i));
      await store.clear();
      expect(await keysUnder(admin, store.keys.prefix)).toEqual([]);
      expect(await store.length()).toBe(0);
      expect(await other.get(keep)).not.toBeNull();
    });

    it("destroyUser ends every session of one user and listUser lists them (hashes, never sids)", async () => {
      const store = make({ userOf: (s) => (s.user as { name?: string } | undefined)?.name });
      const ana = [newSid(), newSid(), newSid()];
      const bob = newSid();
      for (const sid of ana) await store.set(sid, sessionData({ user: { name: "ana" } }));
      await store.set(bob, sessionData({ user: { name: "bob" } }));
      const listed = (await store.listUser("ana"))!;
      expect(new Set(listed.map((l) => l.id))).toEqual(new Set(ana.map(sha)));
      await store.destroy(ana[0]!);
      expect((await store.listUser("ana"))!.length).toBe(2);
      expect(await store.destroyUser("ana")).toBe(2);
      for (const sid of ana) expect(await store.get(sid)).toBeNull();
      expect(await store.get(bob)).not.toBeNull();
      expect(await store.listUser("ana")).toEqual([]);
    });

    it("a login racing destroyUser is either ended or still indexed: never alive and unlisted", async () => {
      const store = make({ userOf: (s) => s.user as string });
      const all: string[] = [];
      const tick = () => new Promise((r) => setImmediate(r));
      for (let round = 0; round < 40; round++) {
        const sids = [newSid(), newSid(), newSid()];
        all.push(...sids);
        await store.set(sids[0]!, sessionData({ user: "cy" }));
        // Logins starting before, with, and a few turns after the logout-all: every interleaving of their commands.
        const login = async (sid: string, ticks: number) => {
          for (let i = 0; i < ticks; i++) await tick();
          await store.set(sid, sessionData({ user: "cy" }));
        };
        await Promise.all([login(sids[1]!, round % 5), store.destroyUser("cy"), login(sids[2]!, (round * 3) % 7)]);
      }
      const alive: string[] = [];
      for (const sid of all) if ((await store.get(sid)) !== null) alive.push(sha(sid));
      const listed = new Set((await store.listUser("cy"))!.map((l) => l.id));
      for (const id of alive) expect(listed.has(id)).toBe(true);
      await store.destroyUser("cy");
      expect(await store.length()).toBe(0);
    });

    it("a client that would queue commands while disconnected still gets a rejection within commandTimeoutMs", async () => {
      const store = make({ commandTimeoutMs: 300 });
      const sid = newSid();
      await store.set(sid, sessionData());
      // A client whose connection is gone and that queues offline: without the store's own deadline, hangs.
      const queued = makeClient();
      await ready(queued);
      (queued as { options: { enableOfflineQueue?: boolean } }).options.enableOfflineQueue = true;
      queued.disconnect(false);
      const offline = new RedisSessionStore({ client: queued, prefix: store.keys.prefix, nearCache: false, commandTimeoutMs: 300 });
      await expect(offline.get(sid)).rejects.toBeInstanceOf(SessionBackendUnavailableError);
      await offline.close();
    });
  });
}

/** Redis Cluster slot of a key (same as the cache layer's keySlot). */
function keySlotOf(key: string): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require("../../src/cache/redis") as { keySlot(k: string): number }).keySlot(key);
}
