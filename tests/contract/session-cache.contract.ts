/**
 * The SessionCache contract: every backend runs these same tests. `stores: false` (no-op) flips what
 * is expected (nothing is ever read back) instead of skipping tests.
 */
import { randomBytes } from "node:crypto";
import type { Session, SessionCache } from "../../src/cache/types";

/** What a backend can do. */
export interface ContractCapabilities {
  /** False for the no-op backend: every read is a miss. */
  stores: boolean;
}

export function newId(): string {
  return randomBytes(32).toString("hex");
}

export function newSession(username: string, ttlSeconds = 600, extra: Partial<Session> = {}): Session {
  const now = Date.now();
  return { username, createdAt: now, lastSeenAt: now, expiresAt: now + ttlSeconds * 1000, ...extra };
}

function user(): string {
  return `user-${randomBytes(4).toString("hex")}`;
}

/**
 * Registers the contract tests. `makeCache` is called before each test (a fresh cache, e.g. a unique
 * key prefix); the cache is cleared and closed after it.
 */
export function describeSessionCacheContract(
  name: string,
  makeCache: () => Promise<SessionCache> | SessionCache,
  caps: ContractCapabilities,
): void {
  const t = (title: string) => `${name}: ${title}`;
  describe(`SessionCache contract (${name})`, () => {
    let cache: SessionCache;
    beforeEach(async () => {
      cache = await makeCache();
    });
    afterEach(async () => {
      await cache.clear();
      await cache.close();
    });

    it(t(caps.stores ? "get returns what set stored" : "get returns null after set (stores nothing)"), async () => {
      const id = newId();
      const s = newSession(user());
      await cache.set(id, s, 60);
      expect(await cache.get(id)).toEqual(caps.stores ? s : null);
    });

    it(t("get returns null for an unknown id"), async () => {
      expect(await cache.get(newId())).toBeNull();
    });

    it(t("round-trips every Session field"), async () => {
      const id = newId();
      const s: Session = {
        username: "ünïcode user ✓",
        createdAt: 1_700_000_000_000,
        lastSeenAt: 1_700_000_000_500,
        expiresAt: Date.now() + 3_600_000,
        idleSeconds: 900,
        credentialId: "cred-7",
        ip: "::1",
        userAgent: 'Mozilla/5.0 "quoted" \\ back',
      };
      await cache.set(id, s, 60);
      expect(await cache.get(id)).toEqual(caps.stores ? s : null);
    });

    it(t("set replaces an existing value"), async () => {
      const id = newId();
      const u = user();
      await cache.set(id, newSession(u), 60);
      const second = newSession(u, 600, { ip: "10.0.0.2" });
      await cache.set(id, second, 60);
      expect(await cache.get(id)).toEqual(caps.stores ? second : null);
    });

    it(t(caps.stores ? "update replaces an existing session and returns true" : "update returns false"), async () => {
      const id = newId();
      const u = user();
      await cache.set(id, newSession(u), 60);
      const changed = newSession(u, 600, { lastSeenAt: Date.now() + 1000 });
      expect(await cache.update(id, changed, 60)).toBe(caps.stores);
      expect(await cache.get(id)).toEqual(caps.stores ? changed : null);
    });

    it(t("update of a missing session returns false and creates nothing"), async () => {
      const id = newId();
      expect(await cache.update(id, newSession(user()), 60)).toBe(false);
      expect(await cache.get(id)).toBeNull();
    });

    it(t("update after invalidate returns false and does not recreate the session"), async () => {
      const id = newId();
      const u = user();
      await cache.set(id, newSession(u), 60);
      await cache.invalidate(id);
      expect(await cache.update(id, newSession(u), 60)).toBe(false);
      expect(await cache.get(id)).toBeNull();
    });

    it(t("get returns null after invalidate"), async () => {
      const id = newId();
      await cache.set(id, newSession(user()), 60);
      await cache.invalidate(id);
      expect(await cache.get(id)).toBeNull();
    });

    it(t("invalidate of an unknown id resolves"), async () => {
      await expect(cache.invalidate(newId())).resolves.toBeUndefined();
    });

    it(t(caps.stores ? "listUserSessions lists the user's sessions only" : "listUserSessions is empty"), async () => {
      const u = user();
      const other = user();
      const a = newId();
      const b = newId();
      await cache.set(a, newSession(u), 60);
      await cache.set(b, newSession(u), 60);
      await cache.set(newId(), newSession(other), 60);
      const ids = (await cache.listUserSessions(u)).map((e) => e.id).sort();
      expect(ids).toEqual(caps.stores ? [a, b].sort() : []);
    });

    it(t("listUserSessions leaves out invalidated sessions"), async () => {
      const u = user();
      const a = newId();
      const b = newId();
      await cache.set(a, newSession(u), 60);
      await cache.set(b, newSession(u), 60);
      await cache.invalidate(a);
      const list = await cache.listUserSessions(u);
      expect(list.map((e) => e.id)).toEqual(caps.stores ? [b] : []);
      if (caps.stores) expect(list[0]?.session.username).toBe(u);
    });

    it(t(caps.stores ? "invalidateUser removes every session of the user and counts them" : "invalidateUser returns 0"), async () => {
      const u = user();
      const other = user();
      const a = newId();
      const b = newId();
      const o = newId();
      await cache.set(a, newSession(u), 60);
      await cache.set(b, newSession(u), 60);
      await cache.set(o, newSession(other), 60);
      expect(await cache.invalidateUser(u)).toBe(caps.stores ? 2 : 0);
      expect(await cache.get(a)).toBeNull();
      expect(await cache.get(b)).toBeNull();
      expect(await cache.listUserSessions(u)).toEqual([]);
      expect((await cache.get(o)) !== null).toBe(caps.stores);
    });

    it(t("invalidateUser racing sets: every live session stays listed, and the next invalidateUser ends it"), async () => {
      // Linearization at the index write: a set whose index write lands before invalidateUser reads the
      // index is removed by it; one landing after survives, and must then be listed like any other.
      const u = user();
      const ids: string[] = [];
      let writing = true;
      const writers = Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 40; i++) {
          const id = newId();
          ids.push(id);
          await cache.set(id, newSession(u), 60);
        }
      });
      const wiper = (async () => {
        let rounds = 0;
        while (writing || rounds < 2) {
          await cache.invalidateUser(u);
          await cache.listUserSessions(u); // pruning must not drop a live id either
          rounds++;
        }
      })();
      await Promise.all(writers);
      writing = false;
      await wiper;

      const live = [];
      for (const id of ids) if ((await cache.get(id)) !== null) live.push(id);
      const listed = new Set((await cache.listUserSessions(u)).map((e) => e.id));
      expect(live.filter((id) => !listed.has(id))).toEqual([]);
      expect(await cache.invalidateUser(u)).toBe(live.length);
      for (const id of ids) expect(await cache.get(id)).toBeNull();
    });

    it(t("invalidateUser of an unknown user returns 0"), async () => {
      expect(await cache.invalidateUser(user())).toBe(0);
    });

    it(t("clear removes every session"), async () => {
      const ids = [newId(), newId(), newId()];
      const u = user();
      for (const id of ids) await cache.set(id, newSession(u), 60);
      await cache.clear();
      for (const id of ids) expect(await cache.get(id)).toBeNull();
      expect(await cache.listUserSessions(u)).toEqual([]);
    });

    it(t("ping resolves"), async () => {
      await expect(cache.ping()).resolves.toBeUndefined();
    });

    it(t("close is idempotent"), async () => {
      const extra = await makeCache();
      await extra.close();
      await expect(extra.close()).resolves.toBeUndefined();
    });

    it(t("get returns null once the session's expiresAt has passed"), async () => {
      const id = newId();
      const s = newSession(user(), 600, { expiresAt: Date.now() + 1000 });
      await cache.set(id, s, 60);
      const got = await cache.get(id);
      // Only a read that ended before expiresAt must see it (a loaded machine may take longer than that).
      if (Date.now() < s.expiresAt) expect(got).toEqual(caps.stores ? s : null);
      await new Promise((r) => setTimeout(r, Math.max(0, s.expiresAt - Date.now()) + 50));
      expect(await cache.get(id)).toBeNull();
    });

    it(t("get returns null once the TTL has passed"), async () => {
      const id = newId();
      const s = newSession(user());
      const setAt = Date.now(); // the TTL starts when the backend runs the write: at or after this
      await cache.set(id, s, 1);
      const setDone = Date.now(); // ... and at or before this
      const got = await cache.get(id);
      if (Date.now() < setAt + 1000) expect(got).toEqual(caps.stores ? s : null);
      await new Promise((r) => setTimeout(r, Math.max(0, setDone + 1000 - Date.now()) + 50));
      expect(await cache.get(id)).toBeNull();
    });

    it(t("the stored value is a copy: mutating the caller's object changes nothing"), async () => {
      const id = newId();
      const s = newSession(user());
      await cache.set(id, s, 60);
      const original = { ...s };
      s.ip = "mutated";
      expect(await cache.get(id)).toEqual(caps.stores ? original : null);
    });

    it(t("exposes its backend name"), () => {
      expect(cache.name).toBe(name.split(" ")[0]);
    });
  });
}
