/**
 * The near-cache across a Sentinel failover: both connections of each instance move to the new master,
 * tracking is re-established there, and a logout made after the failover is seen by the other instance.
 */
import { NearCache, type SessionBackend } from "../../src/cache";
import { command } from "../helpers/redis-process";
import { startSentinelTopology, type SentinelTopology } from "../helpers/redis-sentinel";
import { backendFor, eventually, newId, newSession } from "../helpers/scale-out";
import { nearHits, until } from "./near-cache-helpers";

let topo: SentinelTopology;
let a: SessionBackend;
let b: SessionBackend;

beforeAll(async () => {
  topo = await startSentinelTopology();
  const env = { BANGUI_NEAR_CACHE: "true", BANGUI_KEY_PREFIX: "ncs:", BANGUI_REDIS_COMMAND_TIMEOUT_MS: "500", BANGUI_REDIS_WAIT_REPLICAS: "0" };
  a = backendFor(topo.url, env);
  b = backendFor(topo.url, env);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await topo?.stop();
});

/** Reads `id` through b: true when that read was a local hit. */
async function localHitInB(id: string): Promise<boolean> {
  const hits = await nearHits(b.cache);
  expect(await b.cache.get(id)).not.toBeNull();
  return (await nearHits(b.cache)) === hits + 1;
}

test("after the master is killed, tracking comes back on the new master and no logout is missed", async () => {
  const nearA = a.cache as NearCache;
  const nearB = b.cache as NearCache;
  expect(nearB).toBeInstanceOf(NearCache);
  await until(() => nearA.tracking && nearB.tracking, "tracking on both instances", 10_000);

  const ids = Array.from({ length: 10 }, () => newId());
  for (const id of ids) await a.cache.set(id, newSession("alice"), 600);
  for (const id of ids) await until(() => localHitInB(id), "b to serve the session from its local layer"); // cached in b
  const master = await topo.currentMaster();
  expect(Number(await command(master.port, ["WAIT", "1", "2000"]))).toBe(1);

  const old = await topo.killMaster();
  await topo.waitForFailover(old, 20_000);
  // While tracking is not back, b reads through: the truth, or an error (fail closed), never its old copy.
  await eventually(() => a.cache.invalidate(ids[0]!));
  expect(await eventually(() => b.cache.get(ids[0]!))).toBeNull();

  await until(() => nearA.tracking && nearB.tracking, "tracking on the new master", 20_000);
  // Cached again, from the new master: hits are back.
  for (const id of ids.slice(1)) await until(() => localHitInB(id), "b to serve the session from its local layer");
  for (const id of ids.slice(1, 6)) await a.cache.invalidate(id);
  for (const id of ids.slice(1, 6)) expect(await b.cache.get(id)).toBeNull();
  for (const id of ids.slice(6)) expect(await b.cache.get(id)).not.toBeNull();
}, 60_000);
