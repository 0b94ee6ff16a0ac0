import { z } from "zod";

/**
 * A validated login session as every backend stores it. Times are epoch milliseconds.
 * Holds no token and no password: the cache id is the SHA-256 of the token (see `sessionIdFromToken`).
 */
export const SessionSchema = z.object({
  username: z.string().min(1).max(256),
  /** When the login happened. */
  createdAt: z.number().int().nonnegative(),
  /** Absolute end of life; a session is never valid past it, idle timeout or not. */
  expiresAt: z.number().int().nonnegative(),
  /** Last request seen (updated at most once per fraction of the idle window). */
  lastSeenAt: z.number().int().nonnegative(),
  /** Idle timeout in seconds for this session, when one applies. */
  idleSeconds: z.number().int().positive().optional(),
  /** Credential generation of the user at login; a password change or user removal ends the session. */
  credentialId: z.string().max(128).optional(),
  ip: z.string().max(128).optional(),
  userAgent: z.string().max(512).optional(),
});

export type Session = z.infer<typeof SessionSchema>;

/** A session of one user as the per-user index lists it. */
export interface IndexedSession {
  id: string;
  session: Session;
}

/**
 * The session cache protocol. `id` is never a raw token: callers pass `sessionIdFromToken(token)`.
 *
 * Every method rejects with `SessionBackendUnavailableError` when the backend cannot answer; a missing,
 * expired or unparseable value is `null`, never an error (fail closed is the caller's job: an error is
 * never "no session").
 */
export interface SessionCache {
  /** Short backend name for logs and test titles ("memory", "redis", "noop", "near(redis)"). */
  readonly name: string;
  /** The session, or null when missing, expired or unparseable (the last is logged, counted, deleted). */
  get(id: string): Promise<Session | null>;
  /** Stores the session for `ttlSeconds` and adds `id` to the index of `session.username`. */
  set(id: string, session: Session, ttlSeconds: number): Promise<void>;
  /**
   * Replaces the value of an existing session and sets its remaining lifetime to `ttlSeconds`, atomically
   * and only if it still exists (`SET ... XX`): a request in flight never recreates a destroyed session.
   * @returns false when the session was gone.
   */
  update(id: string, session: Session, ttlSeconds: number): Promise<boolean>;
  /** Removes the session everywhere (and, with replicas, waits for their acknowledgement when configured). */
  invalidate(id: string): Promise<void>;
  /** The live sessions of one user, from the per-user index; stale index members are pruned. */
  listUserSessions(username: string): Promise<IndexedSession[]>;
  /** Removes every session of one user and the user's index. @returns how many sessions were removed. */
  invalidateUser(username: string): Promise<number>;
  /** Removes every session and index this cache wrote (its own key prefix only, never FLUSHDB). */
  clear(): Promise<void>;
  /** Resolves when the backend answers; rejects with SessionBackendUnavailableError otherwise. */
  ping(): Promise<void>;
  /** Releases connections and timers. Idempotent. */
  close(): Promise<void>;
}
