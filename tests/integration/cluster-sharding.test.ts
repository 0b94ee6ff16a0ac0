/**
 * Redis Cluster through the real factory (`redis+cluster://`): sessions shard over every master, every
 * multi-key operation is slot-safe, clear() walks every master and only its own prefix, login throttling
 * counters live on the cluster, and logouts wait for the replica of the master that held the session.
 */
import { LoginThrottledError } from "../../src/auth/errors";
import { LoginThrottle } from "../../src/auth/throttle";
import type { Cluster } from "ioredis";
import { SessionBackendUnavailableError } from "../../src/errors";
import { createKeySpace, type KeySpace } from "../../src/cache/keys";
import type { SessionBackend } from "../../src/cache";
import { command, commands, waitFor } from "../helpers/redis-process";
import { startClusterTopology, type ClusterNodeInfo, type ClusterTopology } from "../helpers/redis-cluster";
import { backendFor, eventually, newId, newSession, uniquePrefix } from "../helpers/scale-out";

let topo: ClusterTopology;
const opened: SessionBackend[] = [];

/** A backend on its own prefix, once the cluster client is ready (it has no offline queue). */
async function open(env: Record<string, string> = {}): Promise<{ backend: SessionBackend; keys: KeySpace }> {
  const prefix = uniquePrefix("c");
  const backend = backendFor(topo.url, {
    BANGUI_KEY_PREFIX: prefix,
    BANGUI_REDIS_WAIT_REPLICAS: "auto",
    BANGUI_REDIS_WAIT_TIMEOUT_MS: "300",
    ...env,
  });
  opened.push(backend);
  await eventually(() => backend.cache.ping());
  return { backend, keys: createKeySpace(prefix) };
}

/** Keys (matching `pattern`) held by one master, read on that master directly. */
async function keysOn(node: ClusterNodeInfo, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = (await command(node.port, ["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"])) as [string, string[]];
    found.push(...batch);
    cursor = next;
  } while (cursor !== "0");
  return found;
}

/** Does the replica of the master serving `key` hold it (asked on the replica, READONLY)? */
async function onReplicaOf(key: string): Promise<boolean> {
  const master = await topo.masterForKey(key);
  const [replica] = await topo.replicasOf(master);
  if (replica === undefined) throw new Error(`master ${master.port} has no live replica`);
  return Number(await commands(replica.port, [["READONLY"], ["EXISTS", key]])) === 1;
}

/** Creates sessions of `username` until at least `perMaster` sit on every master; returns their ids. */
/** The user of each session made by sessionsOnEveryMaster. */
const userOf = new Map<string, string>();

async function sessionsOnEveryMaster(
  backend: SessionBackend,
  keys: KeySpace,
  username: string,
  perMaster = 1,
  oneUserEach = false,
): Promise<string[]> {
  const masters = await topo.masters();
  const count = new Map<number, number>(masters.map((m) => [m.port, 0]));
  const ids: string[] = [];
  while ([...count.values()].some((n) => n < perMaster) || ids.length < 6) {
    if (ids.length > 100) throw new Error("100 sessions never covered every master");
    const id = newId();
    // One user per session: a removal also writes its user's index (SREM), which may live on a third master.
    const user = oneUserEach ? `${username}-${ids.length}` : username;
    userOf.set(id, user);
    await eventually(() => backend.cache.set(id, newSession(user), 600));
    ids.push(id);
    const port = (await topo.masterForKey(keys.session(id))).port;
    count.set(port, (count.get(port) ?? 0) + 1);
  }
  return ids;
}

beforeAll(async () => {
  topo = await startClusterTopology();
});

afterAll(async () => {
  await Promise.allSettled(opened.map((b) => b.close()));
  await topo?.stop();
});

test("sessions spread over all three masters, each stored on the master its slot names", async () => {
  const { backend, keys } = await open();
  const byMaster = new Map<number, number>();
  for (let i = 0; i < 30; i++) {
    const id = newId();
    await eventually(() => backend.cache.set(id, newSession(`spread${i}`), 600));
    const key = keys.session(id);
    const slot = await topo.keySlot(key);
    const master = await topo.masterForKey(key);
    expect(master.slots.some(([a, b]) => slot >= a && slot <= b)).toBe(true);
    const raw = (await command(master.port, ["GET", key])) as string | null;
    expect(JSON.parse(raw ?? "null")).toMatchObject({ username: `spread${i}` });
    byMaster.set(master.port, (byMaster.get(master.port) ?? 0) + 1);
  }
  expect([...byMaster.keys()].sort()).toEqual((await topo.masters()).map((m) => m.port).sort());
});

test("a user's sessions on every master are listed, updated and read without CROSSSLOT errors", async () => {
  const { backend, keys } = await open();
  const ids = await sessionsOnEveryMaster(backend, keys, "wanderer");

  const listed = await backend.cache.listUserSessions("wanderer");
  expect(listed.map((s) => s.id).sort()).toEqual([...ids].sort());
  const changed = { ...newSession("wanderer"), userAgent: "moved" };
  for (const id of ids) expect(await backend.cache.update(id, changed, 600)).toBe(true);
  for (const id of ids) expect(await backend.cache.get(id)).toEqual(changed);
});

test("logout-all removes a user's sessions from every master, and the index", async () => {
  const { backend, keys } = await open();
  const ids = await sessionsOnEveryMaster(backend, keys, "everywhere");
  const bystander = newId();
  await backend.cache.set(bystander, newSession("bystander"), 600);

  expect(await backend.cache.invalidateUser("everywhere")).toBe(ids.length);

  for (const id of ids) expect(await backend.cache.get(id)).toBeNull();
  for (const m of await topo.masters()) {
    const left = await keysOn(m, `${keys.sessionPrefix}*`);
    expect(left.filter((k) => ids.some((id) => k === keys.session(id)))).toEqual([]);
  }
  expect(Number(await command((await topo.masterForKey(keys.userIndex("everywhere"))).port, ["EXISTS", keys.userIndex("everywhere")]))).toBe(0);
  expect(await backend.cache.listUserSessions("everywhere")).toEqual([]);
  expect(await backend.cache.get(bystander)).not.toBeNull();
});

test("clear() empties its prefix on every master and leaves other prefixes and foreign keys alone", async () => {
  const mine = await open();
  const theirs = await open();
  const cluster = mine.backend.redis as Cluster;
  const foreign: string[] = [];
  for (let i = 0; i < 12; i++) {
    foreign.push(`foreign:${i}`);
    await cluster.set(`foreign:${i}`, "keep", "EX", 600);
  }
  const mineIds = await sessionsOnEveryMaster(mine.backend, mine.keys, "clearme");
  const theirIds = await sessionsOnEveryMaster(theirs.backend, theirs.keys, "keepme");

  await mine.backend.cache.clear();

  const masters = await topo.masters();
  for (const m of masters) expect(await keysOn(m, `${mine.keys.prefix}*`)).toEqual([]);
  const theirsLeft = (await Promise.all(masters.map((m) => keysOn(m, `${theirs.keys.prefix}*`)))).flat();
  expect(theirsLeft).toEqual(expect.arrayContaining(theirIds.map((id) => theirs.keys.session(id))));
  for (const id of theirIds) expect(await theirs.backend.cache.get(id)).not.toBeNull();
  for (const id of mineIds) expect(await mine.backend.cache.get(id)).toBeNull();
  for (const k of foreign) expect(await cluster.get(k)).toBe("keep");
});

test("login throttling (LoginThrottle) counts per username+IP on the cluster, keys spread over masters", async () => {
  const { backend, keys } = await open();
  expect(backend.redis).toBeDefined();
  const throttle = new LoginThrottle({ maxFailures: 3, windowSeconds: 60, redis: backend.redis!, keyPrefix: keys.throttlePrefix });
  const users = Array.from({ length: 8 }, (_, i) => `user${i}`);
  for (const u of users) {
    for (let i = 0; i < 3; i++) await throttle.attempt(u, "127.0.0.1");
  }
  for (const u of users) await expect(throttle.attempt(u, "127.0.0.1")).rejects.toBeInstanceOf(LoginThrottledError);

  const holders = new Set<number>();
  for (const m of await topo.masters()) if ((await keysOn(m, `${keys.throttlePrefix}*`)).length > 0) holders.add(m.port);
  expect(holders.size).toBeGreaterThan(1);

  await throttle.reset("user0", "127.0.0.1");
  await expect(throttle.attempt("user0", "127.0.0.1")).resolves.toBeUndefined();
  await expect(throttle.attempt("user1", "127.0.0.1")).rejects.toBeInstanceOf(LoginThrottledError);
});

test("after invalidate resolves, the replica of the session's master no longer has it", async () => {
  const { backend, keys } = await open();
  const ids = await sessionsOnEveryMaster(backend, keys, "replicated");
  for (const id of ids) await waitFor("the replica has the session", 2000, () => onReplicaOf(keys.session(id)));

  for (const id of ids) {
    await backend.cache.invalidate(id);
    expect(await onReplicaOf(keys.session(id))).toBe(false);
  }
});

test("with one master's replica paused, logouts on that master reject and logouts elsewhere succeed", async () => {
  const { backend, keys } = await open();
  const ids = await sessionsOnEveryMaster(backend, keys, "paused", 4, true);
  // Per session: the master of its key, and the master of its user's index (a removal writes both).
  const unused = new Map<string, { port: number; indexPort: number }>();
  for (const id of ids) {
    unused.set(id, {
      port: (await topo.masterForKey(keys.session(id))).port,
      indexPort: (await topo.masterForKey(keys.userIndex(userOf.get(id)!))).port,
    });
  }
  const take = (pick: (at: { port: number; indexPort: number }) => boolean): string => {
    const id = [...unused.keys()].find((k) => pick(unused.get(k)!));
    if (id === undefined) throw new Error("no session left with its key and index where this test needs them");
    unused.delete(id);
    return id;
  };

  // Every master in turn: the WAIT must go to the master that took the DEL, not to any node.
  for (const master of await topo.masters()) {
    const here = take((at) => at.port === master.port);
    const elsewhere = take((at) => at.port !== master.port && at.indexPort !== master.port);
    const [replica] = await topo.replicasOf(master);
    expect(replica).toBeDefined();
    replica!.process.signal("SIGSTOP");
    try {
      await expect(backend.cache.invalidate(here)).rejects.toBeInstanceOf(SessionBackendUnavailableError);
      await expect(backend.cache.invalidate(elsewhere)).resolves.toBeUndefined();
    } finally {
      replica!.process.signal("SIGCONT");
    }
    await topo.waitForHealthy();
    await eventually(() => backend.cache.invalidate(here));
    expect(await backend.cache.get(here)).toBeNull();
  }
});
