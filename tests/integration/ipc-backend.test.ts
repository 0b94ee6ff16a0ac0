/**
 * The ipc backend across real processes. Here the jest process plays the node:cluster primary
 * (IpcSessionServer) and forks two workers (tests/fixtures/ipc-worker.ts: an IpcSessionCache on its IPC
 * channel, driven by messages); the last test forks the primary instead and freezes it.
 */
import type { ChildProcess } from "node:child_process";
import { IpcSessionCache } from "../../src/cache/ipc";
import { IpcSessionServer, type IpcPeer } from "../../src/cache/ipc-server";
import { InMemorySessionCache } from "../../src/cache/memory";
import { SessionBackendUnavailableError } from "../../src/errors";
import { newId, newSession } from "../contract/session-cache.contract";
import { forkFixture, killFixture } from "../helpers/ipc-fixtures";

jest.setTimeout(120_000);

interface Result {
  value?: unknown;
  error?: string;
  stats: { hits: number; misses: number; requests: number; invalidations: number };
}

interface Worker {
  child: ChildProcess;
  peer: IpcPeer;
  call(op: string, ...args: unknown[]): Promise<Result>;
}

const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) await killFixture(child);
});

/** Forks a worker fixture wired to `server` as the cluster primary wires its workers. */
async function forkWorker(server: IpcSessionServer, id: number, timeoutMs: number): Promise<Worker> {
  const child = await forkFixture("ipc-worker", { IPC_TIMEOUT_MS: String(timeoutMs) });
  children.push(child);
  const peer: IpcPeer = { id, send: (m) => child.send(m as object), isConnected: () => child.connected };
  const waiting = new Map<number, (r: Result) => void>();
  let tid = 0;
  child.on("message", (message: unknown) => {
    if (server.handle(peer, message)) return;
    const m = message as { type?: string; tid?: number } & Result;
    if (m.type === "fixture-result") waiting.get(m.tid!)?.(m);
  });
  child.on("exit", () => server.peerGone(peer));
  // The worker's hello was sent before "ready": once a ping answers, the primary knows it.
  const call = (op: string, ...args: unknown[]) =>
    new Promise<Result>((resolve) => {
      const t = ++tid;
      waiting.set(t, resolve);
      child.send({ type: "fixture-call", tid: t, op, args });
    });
  expect((await call("ping")).error).toBeUndefined();
  return { child, peer, call };
}

test("a read is a local hit the second time; a logout on another worker answers only after this worker dropped it", async () => {
  const server = new IpcSessionServer({ store: new InMemorySessionCache() });
  const w1 = await forkWorker(server, 1, 10_000);
  const w2 = await forkWorker(server, 2, 10_000);
  const id = newId();
  const session = newSession("alice");
  await w2.call("set", id, session, 60);

  const first = await w1.call("get", id);
  expect(first.value).toEqual(session);
  const second = await w1.call("get", id);
  expect(second.value).toEqual(session);
  // The second read asked nobody: a near-cache hit.
  expect(second.stats.requests).toBe(first.stats.requests);
  expect(second.stats.hits).toBe(first.stats.hits + 1);

  const before = server.metrics.sent;
  const logout = await w2.call("invalidate", id);
  expect(logout.error).toBeUndefined();
  // Answered after w1 acknowledged: w1's next read is a miss that asks the primary, and finds nothing.
  const after = await w1.call("get", id);
  expect(after.value).toBeNull();
  expect(after.stats.invalidations).toBe(second.stats.invalidations + 1);
  expect(after.stats.requests).toBe(second.stats.requests + 1);
  expect((await before.get()).values[0]?.value).toBeGreaterThanOrEqual(1);
  await killFixture(w1.child);
  await killFixture(w2.child);
});

test("a frozen worker: logouts elsewhere fail closed (503) within the timeout, then it is killed and logouts work again", async () => {
  const unresponsive: number[] = [];
  const server = new IpcSessionServer({
    store: new InMemorySessionCache(),
    ackTimeoutMs: 1500,
    onUnresponsive: (peer) => {
      unresponsive.push(peer.id);
      frozen.child.kill("SIGKILL");
    },
  });
  const frozen = await forkWorker(server, 1, 10_000);
  const writer = await forkWorker(server, 2, 500);
  const id = newId();
  await writer.call("set", id, newSession("bob"), 60);
  expect((await frozen.call("get", id)).value).not.toBeNull(); // cached in the frozen worker
  frozen.child.kill("SIGSTOP");

  // The frozen worker cannot acknowledge: the writer is not told "done" (it could still serve the session).
  const logout = await writer.call("invalidate", id);
  expect(logout.error).toBe(SessionBackendUnavailableError.name);

  // The primary gives up on it and kills it; with it gone, writes are answered again.
  const exited = new Promise((resolve) => frozen.child.once("exit", resolve));
  await exited;
  expect(unresponsive).toEqual([1]);
  const again = await writer.call("invalidate", id);
  expect(again.error).toBeUndefined();
  expect((await writer.call("get", id)).value).toBeNull();
  await killFixture(writer.child);
});

test("a primary that does not answer: requests reject with SessionBackendUnavailableError, never 'no session'", async () => {
  const primary = await forkFixture("ipc-primary");
  children.push(primary);
  const cache = new IpcSessionCache({ channel: primary, commandTimeoutMs: 300, nearCache: false });
  const id = newId();
  await cache.set(id, newSession("carol"), 60);
  primary.kill("SIGSTOP");
  try {
    await expect(cache.get(id)).rejects.toBeInstanceOf(SessionBackendUnavailableError);
    await expect(cache.invalidate(id)).rejects.toBeInstanceOf(SessionBackendUnavailableError);
    await expect(cache.ping()).rejects.toBeInstanceOf(SessionBackendUnavailableError);
  } finally {
    primary.kill("SIGCONT");
  }
  // Back: answers again (the late replies of the timed-out requests are ignored).
  await cache.ping();
  await cache.close();
  await killFixture(primary);
  // Channel gone: fails closed at once.
  const orphan = new IpcSessionCache({ channel: primary, commandTimeoutMs: 300 });
  await expect(orphan.get(id)).rejects.toBeInstanceOf(SessionBackendUnavailableError);
  await orphan.close();
});
