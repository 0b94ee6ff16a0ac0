/**
 * A failover while the old master is still alive (SENTINEL FAILOVER: planned maintenance, or a master
 * that was only cut off for a while). Between the promotion of the replica and the moment the client
 * moves to it, the old master still takes writes, with no replica left to copy them; when it is turned
 * into a replica of the new master, its data is replaced by the new master's. A logout acknowledged in
 * that window would be undone, so it must be refused (503) instead.
 */
import { SessionBackendUnavailableError } from "../../src/errors";
import { createKeySpace } from "../../src/cache/keys";
import type { SessionBackend } from "../../src/cache";
import { command, info, waitFor } from "../helpers/redis-process";
import { startSentinelTopology, type SentinelTopology } from "../helpers/redis-sentinel";
import { backendFor, eventually, newId, newSession, uniquePrefix } from "../helpers/scale-out";

let topo: SentinelTopology;
let backend: SessionBackend;
const prefix = uniquePrefix("sw");
const keys = createKeySpace(prefix);

beforeAll(async () => {
  topo = await startSentinelTopology();
  backend = backendFor(topo.url, {
    BANGUI_KEY_PREFIX: prefix,
    BANGUI_REDIS_WAIT_REPLICAS: "auto",
    BANGUI_REDIS_WAIT_TIMEOUT_MS: "200",
    BANGUI_REDIS_COMMAND_TIMEOUT_MS: "500",
  });
});

afterAll(async () => {
  await backend?.close();
  await topo?.stop();
});

test("during a failover with the old master alive, no acknowledged logout is undone", async () => {
  const cache = backend.cache;
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) {
    const id = newId();
    await eventually(() => cache.set(id, newSession(`u${i % 6}`), 600));
    ids.push(id);
  }
  const old = await topo.currentMaster();
  expect(Number(await command(old.port, ["WAIT", "1", "2000"]))).toBe(1);

  const startedAt = Date.now();
  expect(await command(topo.sentinels[0]!.port, ["SENTINEL", "FAILOVER", topo.masterName])).toBe("OK");

  // Logouts keep coming during the switch, 40 ms apart, until a few are acknowledged by the new master.
  const acknowledged: string[] = [];
  const refused: string[] = [];
  const otherErrors: string[] = [];
  let switched = false;
  let acknowledgedAfterSwitch = 0;
  for (const id of ids) {
    try {
      await cache.invalidate(id);
      acknowledged.push(id);
      if (switched) acknowledgedAfterSwitch++;
    } catch (err) {
      if (err instanceof SessionBackendUnavailableError) refused.push(id);
      else otherErrors.push(String(err));
    }
    switched ||= (await topo.currentMaster()) !== old;
    if (acknowledgedAfterSwitch >= 3 || Date.now() - startedAt > 8000) break;
    await new Promise((r) => setTimeout(r, 40));
  }
  expect(switched).toBe(true);
  expect(otherErrors).toEqual([]);
  // The client followed the switch by itself: Sentinel has not demoted the old master yet (it does
  // that ~10 s later), so nothing forced the client off it.
  expect(acknowledgedAfterSwitch).toBe(3);
  expect(((await command(old.port, ["ROLE"])) as unknown[])[0]).toBe("master");

  // What the sentinels do to the old master ~10 s later (+convert-to-slave), done now: it becomes a
  // replica of the new master and its data is replaced by the new master's.
  const promoted = await topo.currentMaster();
  await command(old.port, ["REPLICAOF", "127.0.0.1", String(promoted.port)]);
  await waitFor("the old master is a synced replica of the new one", 10_000, async () => {
    const r = await info(old.port, "replication");
    return r.get("role") === "slave" && r.get("master_link_status") === "up" && r.get("master_sync_in_progress") === "0";
  });

  const undone: string[] = [];
  for (const id of acknowledged) {
    if (Number(await command(promoted.port, ["EXISTS", keys.session(id)])) === 1) undone.push(id);
  }
  expect({ acknowledged: acknowledged.length, undone: undone.length }).toEqual({ acknowledged: acknowledged.length, undone: 0 });
});
