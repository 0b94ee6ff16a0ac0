/**
 * The near-cache on Redis Cluster (issue 15 part 1): tracking per master, coherent across instances,
 * through a slot resharded (CLUSTER SETSLOT + MIGRATE) and a master killed and replaced by its replica,
 * while logouts on one instance and checks on another run: 0 stale accepts, and hits come back after.
 * Every key of this file shares one hash tag, so one slot (and one master) holds them all.
 */
import { NearCache, type SessionBackend } from "../../src/cache";
import { command } from "../helpers/redis-process";
import { startClusterTopology, type ClusterTopology } from "../helpers/redis-cluster";
import { backendFor, eventually, newId, newSession } from "../helpers/scale-out";
import { nearHits, until } from "./near-cache-helpers";

const PREFIX = "{ncc}:";
let topo: ClusterTopology;
let a: SessionBackend;
let b: SessionBackend;
let nearB: NearCache;

beforeAll(async () => {
  topo = await startClusterTopology();
  const env = { BANGUI_NEAR_CACHE: "true", BANGUI_KEY_PREFIX: PREFIX, BANGUI_REDIS_WAIT_REPLICAS: "0", BANGUI_REDIS_COMMAND_TIMEOUT_MS: "1000" };
  a = backendFor(topo.url, env);
  b = backendFor(topo.url, env);
  nearB = b.cache as NearCache;
  expect(nearB).toBeInstanceOf(NearCache);
  await until(() => (a.cache as NearCache).tracking && nearB.tracking, "tracking on every master of both instances", 20_000);
}, 60_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await topo?.stop();
});

/** Reads `id` through b until a read is a local hit. */
async function cacheInB(id: string, timeoutMs = 10_000): Promise<void> {
  await until(async () => {
    const hits = await nearHits(nearB);
    const value = await b.cache.get(id).catch(() => null);
    return value !== null && (await nearHits(nearB)) === hits + 1;
  }, "a local hit on b", timeoutMs);
}

/** Logouts on a and checks on b, one after the other, until stop(): counts checks that accepted a logged-out session. */
function logoutRace(): { peek(): Promise<number>; stop(): Promise<{ rounds: number; stale: number; hits: number }> } {
  let running = true;
  let rounds = 0;
  let stale = 0;
  let hits = 0;
  const loop = (async () => {
    while (running) {
      const id = newId();
      try {
        await a.cache.set(id, newSession(`u${rounds}`), 600);
        for (let i = 0; i < 3; i++) {
          const before = await nearHits(nearB);
          await b.cache.get(id);
          if ((await nearHits(nearB)) > before) hits++;
        }
        await a.cache.invalidate(id);
      } catch {
        continue; // a failing write or read (topology moving): nothing was promised
      }
      rounds++;
      // The logout resolved: from now on no check may accept the session.
      const seen = await b.cache.get(id).catch(() => null);
      if (seen !== null) stale++;
    }
  })();
  return {
    peek: async () => rounds,
    async stop() {
      running = false;
      await loop;
      return { rounds, stale, hits };
    },
  };
}

/** `n` rounds of the logout race, one after the other. */
async function roundsOf(n: number): Promise<{ rounds: number; stale: number; hits: number }> {
  const race = logoutRace();
  await until(async () => (await race.peek()) >= n, `${n} rounds`, 30_000);
  return race.stop();
}

test("instances on a cluster serve hits and see each other's logouts at once, across 100 sessions", async () => {
  const ids = Array.from({ length: 100 }, () => newId());
  for (const id of ids) await a.cache.set(id, newSession("alice"), 600);
  for (const id of ids) await cacheInB(id);
  let stale = 0;
  for (const id of ids) {
    await a.cache.invalidate(id);
    if ((await b.cache.get(id)) !== null) stale++;
  }
  expect(stale).toBe(0);
}, 60_000);

test("a slot resharded (SETSLOT + MIGRATE) while logouts and checks run: 0 stale accepts, hits come back", async () => {
  const slot = Number(await command(topo.nodes[0]!.port, ["CLUSTER", "KEYSLOT", `${PREFIX}x`]));
  const masters = await topo.masters();
  const source = masters.find((m) => m.slots.some(([from, to]) => slot >= from && slot <= to))!;
  const target = masters.find((m) => m !== source)!;
  const kept = Array.from({ length: 20 }, () => newId());
  for (const id of kept) await a.cache.set(id, newSession("bob"), 600);
  for (const id of kept) await cacheInB(id);

  const race = logoutRace();
  await until(async () => (await nearHits(nearB)) > 0, "the race to run");
  await command(target.port, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", source.id]);
  await command(source.port, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", target.id]);
  for (;;) {
    const keys = (await command(source.port, ["CLUSTER", "GETKEYSINSLOT", String(slot), "20"])) as string[];
    if (keys.length === 0) break;
    await command(source.port, ["MIGRATE", "127.0.0.1", String(target.port), "", "0", "5000", "KEYS", ...keys], 6000);
  }
  for (const m of masters) await command(m.port, ["CLUSTER", "SETSLOT", String(slot), "NODE", target.id]);
  await topo.waitForHealthy(20_000);
  const during = await race.stop();
  expect(during.rounds).toBeGreaterThan(0);
  expect(during.stale).toBe(0);
  // On the new owner: logouts and checks, and hits again.
  const after = await roundsOf(50);
  expect(after.stale).toBe(0);
  expect(after.hits).toBeGreaterThan(0);
  // Sessions that moved are still there, served locally again.
  for (const id of kept) await cacheInB(id, 20_000);
}, 90_000);

test("a master killed and replaced by its replica while logouts and checks run: 0 stale accepts, tracking and hits come back", async () => {
  const id0 = newId();
  await a.cache.set(id0, newSession("carol"), 600);
  await cacheInB(id0);
  const race = logoutRace();
  await until(async () => (await race.peek()) >= 5, "the race to run", 30_000);
  const master = await topo.masterForKey(`${PREFIX}x`);
  await master.process.kill();
  await topo.waitForFailover(master, 30_000);
  await until(() => nearB.tracking, "tracking on the new master", 30_000);
  const during = await race.stop();
  expect(during.stale).toBe(0);
  const after = await roundsOf(30);
  expect(after.stale).toBe(0);
  expect(after.hits).toBeGreaterThan(0);
  expect(await eventually(() => b.cache.get(id0))).toMatchObject({ username: "carol" });
}, 120_000);
