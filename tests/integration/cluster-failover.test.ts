/**
 * Cache-level failover inside a Redis Cluster, through the real factory: SIGKILL the master holding a
 * session; calls fail closed (SessionBackendUnavailableError, never a session they cannot check) until
 * its replica takes over, then resume by themselves, with every logout made before the kill intact.
 */
import { SessionBackendUnavailableError } from "../../src/errors";
import { createKeySpace } from "../../src/cache/keys";
import type { SessionBackend } from "../../src/cache";
import type { Session } from "../../src/cache/types";
import { command } from "../helpers/redis-process";
import { startClusterTopology, type ClusterTopology } from "../helpers/redis-cluster";
import { backendFor, eventually, newId, newSession, probeUntilSuccess, reportTiming, uniquePrefix } from "../helpers/scale-out";

let topo: ClusterTopology;
let backend: SessionBackend;
const prefix = uniquePrefix("f");
const keys = createKeySpace(prefix);

beforeAll(async () => {
  topo = await startClusterTopology();
  backend = backendFor(topo.url, {
    BANGUI_KEY_PREFIX: prefix,
    BANGUI_REDIS_WAIT_REPLICAS: "auto",
    BANGUI_REDIS_WAIT_TIMEOUT_MS: "500",
    BANGUI_REDIS_COMMAND_TIMEOUT_MS: "500",
  });
});

afterAll(async () => {
  await backend?.close();
  await topo?.stop();
});

test("after SIGKILL of one master, its replica takes over and every logout made before the kill holds", async () => {
  const cache = backend.cache;
  const masters = await topo.masters();
  const live = new Map<string, Session>();
  const loggedOut: string[] = [];
  const home = new Map<string, number>();
  for (let i = 0; i < 30; i++) {
    const id = newId();
    const s = newSession(`user${i % 5}`);
    await eventually(() => cache.set(id, s, 600));
    live.set(id, s);
    home.set(id, (await topo.masterForKey(keys.session(id))).port);
  }
  const doomedIds = [newId(), newId(), newId(), newId()];
  for (const id of doomedIds) {
    await eventually(() => cache.set(id, newSession("leaver"), 600));
    home.set(id, (await topo.masterForKey(keys.session(id))).port);
  }
  // Logins are on the replicas before the logouts start (logins do not wait; this test is about logouts).
  for (const m of masters) expect(Number(await command(m.port, ["WAIT", "1", "2000"]))).toBe(1);

  for (const id of [...live.keys()].filter((_, i) => i % 3 === 0)) {
    await cache.invalidate(id);
    live.delete(id);
    loggedOut.push(id);
  }
  expect(await cache.invalidateUser("leaver")).toBe(doomedIds.length);
  loggedOut.push(...doomedIds);

  // The victim: a master holding both a live and a logged-out session (ids are random: not always masters[0]).
  const found = masters.find((m) => [...live.keys()].some((id) => home.get(id) === m.port) && loggedOut.some((id) => home.get(id) === m.port));
  expect(found).toBeDefined();
  const victim = found!;
  const probeLive = [...live.keys()].find((id) => home.get(id) === victim.port)!;
  const probeDead = loggedOut.find((id) => home.get(id) === victim.port)!;

  // A session of its own for the logout refused during the failover: a refused (503) logout may still take
  // effect later (503 says "may still be valid"), so probeLive is not the one logged out.
  let refused = newId();
  while ((await topo.masterForKey(keys.session(refused))).port !== victim.port) refused = newId();
  await eventually(() => cache.set(refused, newSession("refused"), 600));
  expect(Number(await command(victim.port, ["WAIT", "1", "2000"]))).toBe(1);

  const killedAt = Date.now();
  await victim.process.kill();

  // A logout of a session on the dead master is refused while nobody serves its slot.
  await expect(cache.invalidate(refused)).rejects.toBeInstanceOf(SessionBackendUnavailableError);

  const wrongAnswers: string[] = [];
  const obs = await probeUntilSuccess(killedAt, async () => {
    const [dead, alive] = await Promise.allSettled([cache.get(probeDead), cache.get(probeLive)]);
    if (dead.status === "fulfilled" && dead.value !== null) wrongAnswers.push("a logged-out session came back");
    if (alive.status === "fulfilled" && alive.value === null) wrongAnswers.push("a live session read as missing");
    for (const r of [dead, alive]) if (r.status === "rejected") throw r.reason;
  });
  reportTiming("cluster failover, cache level, kill -> first success", obs.firstSuccessMs);

  expect(obs.otherErrors).toEqual([]);
  expect(wrongAnswers).toEqual([]);
  expect(obs.unavailable).toBeGreaterThan(0);
  const promoted = await topo.waitForFailover(victim);
  expect(promoted.port).not.toBe(victim.port);

  for (const id of loggedOut) expect(await eventually(() => cache.get(id))).toBeNull();
  for (const [id, s] of live) expect(await eventually(() => cache.get(id))).toEqual(s);
  expect(await cache.listUserSessions("leaver")).toEqual([]);

  // The promoted master takes logins and logouts (it has no replica now: WAIT "auto" waits for none).
  let fresh = newId();
  while ((await topo.masterForKey(keys.session(fresh))).port !== promoted.port) fresh = newId();
  await eventually(() => cache.set(fresh, newSession("late"), 600));
  await cache.invalidate(fresh);
  expect(await cache.get(fresh)).toBeNull();
});
