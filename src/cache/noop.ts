import type { IndexedSession, Session, SessionCache } from "./types";

/**
 * Stores nothing: every get is a miss, update reports the session gone, lists are empty. For parity
 * tests and as the near-cache's "off" position.
 */
export class NoOpSessionCache implements SessionCache {
  readonly name = "noop";

  async get(_id: string): Promise<Session | null> {
    return null;
  }
  async set(_id: string, _session: Session, _ttlSeconds: number): Promise<void> {}
  async update(_id: string, _session: Session, _ttlSeconds: number): Promise<boolean> {
    return false;
  }
  async invalidate(_id: string): Promise<void> {}
  async listUserSessions(_username: string): Promise<IndexedSession[]> {
    return [];
  }
  async invalidateUser(_username: string): Promise<number> {
    return 0;
  }
  async clear(): Promise<void> {}
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}
