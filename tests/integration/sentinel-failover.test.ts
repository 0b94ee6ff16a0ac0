/**
 * Cache-level Sentinel failover through the real factory: SIGKILL the master; every call either answers
 * correctly or rejects with SessionBackendUnavailableError (never a session it cannot check), the client
 * follows the promotion by itself, and every session invalidated before the kill stays invalid.
 */
import { SessionBackendUnavailableError } from "../../src/errors";
import type { SessionBackend } from "../../src/cache";
import type { Session } from "../../src/cache/types";
import { command } from "../helpers/redis-process";
import { startSentinelTopology, type SentinelTopology } from "../helpers/redis-sentinel";
import { backendFor, eventually, newId, newSession, probeUntilSuccess, reportTiming } from "../helpers/scale-out";

let topo: SentinelTopology;
let backend: SessionBackend;

beforeAll(async () => {
  topo = await startSentinelTopology();
  backend = backendFor(topo.url, {
    BANGUI_REDIS_WAIT_REPLICAS: "auto",
    BANGUI_REDIS_WAIT_TIMEOUT_MS: "500",
    BANGUI_REDIS_COMMAND_TIMEOUT_MS: "500",
  });
});

afterAll(async () => {
  await backend?.close();
  await topo?.stop();
});

test("after SIGKILL of the master, calls fail closed until promotion, then resume with every logout intact", async () => {
  const cache = backend.cache;
  const live = new Map<string, Session>();
  const loggedOut: string[] = [];
  for (let i = 0; i < 12; i++) {
    const id = newId();
    const s = newSession(`user${i % 4}`);
    await eventually(() => cache.set(id, s, 600));
    live.set(id, s);
  }
  const doomedUser = "leaver";
  const doomedIds = [newId(), newId(), newId()];
  for (const id of doomedIds) await eventually(() => cache.set(id, newSession(doomedUser), 600));
  // The logins are on the replica before the logouts start (logins do not wait; this test is about logouts).
  const master = await topo.currentMaster();
  expect(Number(await command(master.port, ["WAIT", "1", "2000"]))).toBe(1);

  for (const id of [...live.keys()].slice(0, 5)) {
    await cache.invalidate(id);
    live.delete(id);
    loggedOut.push(id);
  }
  expect(await cache.invalidateUser(doomedUser)).toBe(3);
  loggedOut.push(...doomedIds);
  const probeId = [...live.keys()][0]!;

  const killedAt = Date.now();
  const old = await topo.killMaster();
  expect(old).toBe(master);

  // A logout attempted while there is no master is refused, never reported as done.
  await expect(cache.invalidate(probeId)).rejects.toBeInstanceOf(SessionBackendUnavailableError);

  const wrongAnswers: string[] = [];
  const obs = await probeUntilSuccess(killedAt, async () => {
    // Both reads must fail closed or answer right: never a logged-out session, never "no session" for a live one.
    const [dead, alive] = await Promise.allSettled([cache.get(loggedOut[0]!), cache.get(probeId)]);
    if (dead.status === "fulfilled" && dead.value !== null) wrongAnswers.push("a logged-out session came back");
    if (alive.status === "fulfilled" && alive.value === null) wrongAnswers.push("a live session read as missing");
    for (const r of [dead, alive]) if (r.status === "rejected") throw r.reason;
  });
  reportTiming("sentinel failover, cache level, kill -> first success", obs.firstSuccessMs);

  expect(obs.otherErrors).toEqual([]);
  expect(wrongAnswers).toEqual([]);
  expect(obs.unavailable).toBeGreaterThan(0);
  const promoted = await topo.currentMaster();
  expect(promoted).not.toBe(old);

  for (const id of loggedOut) expect(await cache.get(id)).toBeNull();
  for (const [id, s] of live) expect(await cache.get(id)).toEqual(s);
  expect(await cache.listUserSessions(doomedUser)).toEqual([]);

  // The new master takes logins and logouts (no replica left: WAIT "auto" waits for none).
  const fresh = newId();
  await cache.set(fresh, newSession("late"), 600);
  await cache.invalidate(fresh);
  expect(await cache.get(fresh)).toBeNull();
});
