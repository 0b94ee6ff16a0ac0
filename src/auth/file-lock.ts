/**
 * An exclusive lock between processes on one file: `<path>.lock`, created with O_EXCL (`wx`), holding the
 * owner's pid, host and a nonce. Waiters retry with a short randomized backoff. A lock left by a process
 * that died (same host, pid gone) is broken: moved aside atomically, checked to be the one seen dead, then
 * removed. A lock held from another host is never broken: after `acquireTimeoutMs` the caller gets an
 * error naming the lock file to remove by hand.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { link, mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** Options of withFileLock. */
export interface FileLockOptions {
  /** Give up waiting for the lock after this long. @default 30000 */
  acquireTimeoutMs?: number;
}

interface Owner {
  pid: number;
  host: string;
  nonce: string;
}

/** Runs `fn` while holding the lock of `path` (the lock file is `<path>.lock`). */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const lockPath = `${path}.lock`;
  const me: Owner = { pid: process.pid, host: hostname(), nonce: randomBytes(8).toString("hex") };
  await acquire(lockPath, me, options.acquireTimeoutMs ?? 30_000);
  try {
    return await fn();
  } finally {
    await release(lockPath, me);
  }
}

async function acquire(lockPath: string, me: Owner, acquireTimeoutMs: number): Promise<void> {
  const giveUpAt = Date.now() + acquireTimeoutMs;
  await mkdir(dirname(lockPath), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    if (await tryCreate(lockPath, me)) return;
    const owner = await readOwner(lockPath);
    if (owner !== undefined && isDead(owner)) {
      await breakStale(lockPath, owner);
      continue;
    }
    if (Date.now() >= giveUpAt) {
      throw new Error(
        `the users file is locked by another process (${lockPath}${owner ? `, pid ${owner.pid} on ${owner.host}` : ""}); ` +
          "if no users CLI or service start is running, remove that lock file",
      );
    }
    // Randomized so that waiters do not retry in step; the critical section is a read and a rename.
    await sleep(Math.min(200, 5 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random()));
  }
}

/** Creates the lock with O_EXCL and writes the owner into it. False when it exists already. */
async function tryCreate(lockPath: string, me: Owner): Promise<boolean> {
  let handle;
  try {
    handle = await open(lockPath, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    await handle.writeFile(JSON.stringify(me), "utf8");
  } finally {
    await handle.close();
  }
  return true;
}

/** The owner written in a lock file; undefined when it is gone or not written yet (its owner is writing it). */
async function readOwner(lockPath: string): Promise<Owner | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(lockPath, "utf8"));
    const o = value as Partial<Owner>;
    if (typeof o.pid === "number" && typeof o.host === "string" && typeof o.nonce === "string") return o as Owner;
  } catch {
    // Missing, or created but not written yet: not stale.
  }
  return undefined;
}

/** Only a lock of this host can be judged: its pid no longer exists. */
function isDead(owner: Owner): boolean {
  if (owner.host !== hostname()) return false;
  if (owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/**
 * Moves the lock aside (atomic), then removes it if it is the dead owner's. If another waiter broke it and
 * took the lock in between, what was moved is that live lock: it is put back.
 */
async function breakStale(lockPath: string, dead: Owner): Promise<void> {
  const aside = `${lockPath}.${process.pid}.${randomBytes(6).toString("hex")}.stale`;
  try {
    await rename(lockPath, aside);
  } catch {
    return; // gone already: someone else broke it
  }
  const moved = await readOwner(aside);
  if (moved === undefined || moved.nonce !== dead.nonce) {
    await link(aside, lockPath).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

/** Removes the lock if it is still ours. */
async function release(lockPath: string, me: Owner): Promise<void> {
  const owner = await readOwner(lockPath);
  if (owner?.nonce === me.nonce) await unlink(lockPath).catch(() => undefined);
}
