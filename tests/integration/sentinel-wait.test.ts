/**
 * Logouts wait for the replica (WAIT), on a real Sentinel topology built through the factory: a logout
 * that the replica has not acknowledged is an error (503), never a success a failover could undo.
 */
import { SessionBackendUnavailableError } from "../../src/errors";
import { createKeySpace } from "../../src/cache/keys";
import type { SessionBackend } from "../../src/cache";
import { command, waitFor } from "../helpers/redis-process";
import { startSentinelTopology, type RedisProcess, type SentinelTopology } from "../helpers/redis-sentinel";
import { backendFor, eventually, newId, newSession, uniquePrefix } from "../helpers/scale-out";

let topo: SentinelTopology;
let master: RedisProcess;
let replica: RedisProcess;
const opened: SessionBackend[] = [];

function open(env: Record<string, string> = {}): { backend: SessionBackend; prefix: string } {
  const prefix = uniquePrefix("w");
  const backend = backendFor(topo.url, {
    BANGUI_KEY_PREFIX: prefix,
    BANGUI_REDIS_WAIT_REPLICAS: "auto",
    BANGUI_REDIS_WAIT_TIMEOUT_MS: "300",
    ...env,
  });
  opened.push(backend);
  return { backend, prefix };
}

async function onReplica(key: string): Promise<boolean> {
  return Number(await command(replica.port, ["EXISTS", key])) === 1;
}

/** Pauses the replica for the duration of `fn`; it always resumes, even when `fn` fails. */
async function withReplicaPaused(fn: () => Promise<void>): Promise<void> {
  replica.signal("SIGSTOP");
  try {
    await fn();
  } finally {
    replica.signal("SIGCONT");
    await topo.waitForReplicaSync(replica);
  }
}

beforeAll(async () => {
  topo = await startSentinelTopology();
  master = await topo.currentMaster();
  const replicas = await topo.currentReplicas();
  if (replicas[0] === undefined) throw new Error("the topology has no replica");
  replica = replicas[0];
});

afterAll(async () => {
  await Promise.allSettled(opened.map((b) => b.close()));
  await topo?.stop();
});

test("the factory builds a Redis backend that talks to the master the sentinels name", async () => {
  const { backend, prefix } = open();
  expect(backend.cache).toBeDefined();
  const id = newId();
  await eventually(() => backend.cache.set(id, newSession("ann"), 60));
  expect(Number(await command(master.port, ["EXISTS", createKeySpace(prefix).session(id)]))).toBe(1);
});

// First: ioredis keeps a 2 s disconnect timer for the refused sentinel connection; later tests outlast it.
test("with the first sentinel of the URL dead, a new client still finds the master through the others", async () => {
  await topo.sentinels[0]!.kill();
  const { backend, prefix } = open();
  const id = newId();
  const s = newSession("newcomer");
  await eventually(() => backend.cache.set(id, s, 60));
  expect(await backend.cache.get(id)).toEqual(s);
  expect(Number(await command(master.port, ["EXISTS", createKeySpace(prefix).session(id)]))).toBe(1);
});

test("after invalidate resolves, the replica no longer has the session", async () => {
  const { backend, prefix } = open();
  const key = createKeySpace(prefix).session("");
  const id = newId();
  await eventually(() => backend.cache.set(id, newSession("bob"), 60));
  await waitFor("the replica has the session", 2000, () => onReplica(key + id));

  await backend.cache.invalidate(id);

  expect(await onReplica(key + id)).toBe(false);
});

test("after invalidateUser resolves, the replica has none of the user's sessions nor the index", async () => {
  const { backend, prefix } = open();
  const keys = createKeySpace(prefix);
  const ids = [newId(), newId(), newId()];
  for (const id of ids) await eventually(() => backend.cache.set(id, newSession("cid"), 60));
  await waitFor("the replica has the sessions", 2000, async () => onReplica(keys.session(ids[2]!)));

  expect(await backend.cache.invalidateUser("cid")).toBe(3);

  for (const id of ids) expect(await onReplica(keys.session(id))).toBe(false);
  expect(await onReplica(keys.userIndex("cid"))).toBe(false);
});

test("with the replica paused, invalidate rejects with SessionBackendUnavailableError instead of succeeding", async () => {
  const { backend } = open();
  const id = newId();
  await eventually(() => backend.cache.set(id, newSession("dan"), 60));

  await withReplicaPaused(async () => {
    await expect(backend.cache.invalidate(id)).rejects.toBeInstanceOf(SessionBackendUnavailableError);
  });

  // Once the replica is back, the same logout succeeds (the DEL itself was never in doubt).
  await expect(backend.cache.invalidate(id)).resolves.toBeUndefined();
  expect(await backend.cache.get(id)).toBeNull();
});

test("with the replica paused, invalidateUser rejects with SessionBackendUnavailableError", async () => {
  const { backend } = open();
  await eventually(() => backend.cache.set(newId(), newSession("eve"), 60));
  await eventually(() => backend.cache.set(newId(), newSession("eve"), 60));

  await withReplicaPaused(async () => {
    await expect(backend.cache.invalidateUser("eve")).rejects.toBeInstanceOf(SessionBackendUnavailableError);
  });

  expect(await backend.cache.listUserSessions("eve")).toEqual([]);
});

test("with the replica paused, reads and logins still work (only logouts wait)", async () => {
  const { backend } = open();
  const id = newId();
  const session = newSession("fay");
  await eventually(() => backend.cache.set(id, session, 60));

  await withReplicaPaused(async () => {
    expect(await backend.cache.get(id)).toEqual(session);
    const other = newId();
    await backend.cache.set(other, newSession("fay"), 60);
    expect(await backend.cache.get(other)).not.toBeNull();
  });
});

test("with BANGUI_REDIS_WAIT_REPLICAS=0 a logout does not wait for the paused replica", async () => {
  const { backend } = open({ BANGUI_REDIS_WAIT_REPLICAS: "0" });
  const id = newId();
  await eventually(() => backend.cache.set(id, newSession("gus"), 60));

  await withReplicaPaused(async () => {
    await expect(backend.cache.invalidate(id)).resolves.toBeUndefined();
  });
  expect(await backend.cache.get(id)).toBeNull();
});
