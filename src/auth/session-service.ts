import type { Logger } from "../logger";
import type { Session, SessionCache } from "../cache";
import { InvalidCredentialsError } from "./errors";
import { DUMMY_PASSWORD_HASH, verifyPassword } from "./passwords";
import type { LoginThrottle } from "./throttle";
import { isWellFormedHandle, isWellFormedToken, newToken, publicHandle, sessionIdFromToken } from "./tokens";
import type { UserStore } from "./users";

/** Longest user agent kept in a session (the schema's bound). */
const USER_AGENT_MAX = 512;
const IP_MAX = 128;
/**
 * The idle "touch" writes at most once per this fraction of the idle window: a session then ends between
 * (1 - fraction) x idle and idle after its last request, never later.
 */
const TOUCH_FRACTION = 0.25;

/** Options of SessionService. */
export interface SessionServiceOptions {
  cache: SessionCache;
  users: UserStore;
  throttle: LoginThrottle;
  /** Absolute lifetime of a session. */
  ttlSeconds: number;
  /** Sliding idle timeout, never beyond `ttlSeconds`. @default undefined (off) */
  idleSeconds?: number;
  /** A login beyond it ends the user's oldest sessions. @default undefined (no limit) */
  maxSessionsPerUser?: number;
  /** Epoch milliseconds. @default Date.now */
  clock?: () => number;
  logger: Logger;
  /** Password check (tests wrap it to count calls). @default verifyPassword from passwords.ts */
  verifyPassword?: (password: string, hash: string) => Promise<boolean>;
}

/** A session as `GET /api/auth/sessions` shows it: the id is a public handle, times are ISO strings. */
export interface SessionSummary {
  id: string;
  createdAt: string;
  expiresAt: string;
  lastSeenAt: string;
  ip: string | null;
  userAgent: string | null;
  current: boolean;
}

/**
 * Login, validation and logout over a SessionCache. Tokens never reach the cache (its id is the SHA-256
 * of the token) nor the logs. Every backend failure propagates as SessionBackendUnavailableError: fail
 * closed, an error is never "no session".
 */
export class SessionService {
  private readonly cache: SessionCache;
  private readonly users: UserStore;
  private readonly throttle: LoginThrottle;
  private readonly ttlSeconds: number;
  private readonly idleSeconds: number | undefined;
  private readonly maxSessionsPerUser: number | undefined;
  private readonly clock: () => number;
  private readonly logger: Logger;
  private readonly verify: (password: string, hash: string) => Promise<boolean>;

  constructor(options: SessionServiceOptions) {
    this.cache = options.cache;
    this.users = options.users;
    this.throttle = options.throttle;
    this.ttlSeconds = options.ttlSeconds;
    this.idleSeconds = options.idleSeconds;
    this.maxSessionsPerUser = options.maxSessionsPerUser;
    this.clock = options.clock ?? Date.now;
    this.logger = options.logger;
    this.verify = options.verifyPassword ?? verifyPassword;
  }

  /** Lifetime of a new session: what the cookie's Max-Age says. */
  get sessionTtlSeconds(): number {
    return this.ttlSeconds;
  }

  /**
   * Checks the password (constant time; an unknown user is checked against a dummy hash) and creates a
   * session with a new token. The attempt is counted by the throttle before the password check (atomic,
   * so parallel guesses cannot race past the limit); a success resets the count.
   * @throws LoginThrottledError, InvalidCredentialsError, SessionBackendUnavailableError
   */
  async login(
    username: string,
    password: string,
    meta: { ip: string; userAgent?: string },
  ): Promise<{ token: string; id: string; session: Session }> {
    await this.throttle.attempt(username, meta.ip);
    const user = this.users.get(username);
    const ok = await this.verify(password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
    if (user === undefined || !ok) throw new InvalidCredentialsError();
    await this.throttle.reset(username, meta.ip);

    const now = this.clock();
    const session: Session = {
      username,
      createdAt: now,
      expiresAt: now + this.ttlSeconds * 1000,
      lastSeenAt: now,
      credentialId: user.credentialId,
      ip: meta.ip.slice(0, IP_MAX),
      ...(this.idleSeconds !== undefined ? { idleSeconds: this.idleSeconds } : {}),
      ...(meta.userAgent !== undefined ? { userAgent: meta.userAgent.slice(0, USER_AGENT_MAX) } : {}),
    };
    const token = newToken();
    const id = sessionIdFromToken(token);
    const ttl = this.idleSeconds !== undefined ? Math.min(this.idleSeconds, this.ttlSeconds) : this.ttlSeconds;
    await this.cache.set(id, session, ttl);
    if (this.maxSessionsPerUser !== undefined) await this.enforceMaxSessions(username);
    this.logger.info({ user: username }, "login");
    return { token, id, session };
  }

  /**
   * Keeps the user's newest `maxSessionsPerUser` sessions and ends the others, the new one included
   * when it is not among them. "Newest" is a total order every login computes the same way (createdAt,
   * then id): concurrent logins agree on which sessions stay, so K logins at once leave exactly N live
   * sessions, never fewer (the last login to list sees every session and keeps the same N the others
   * kept). The new session was written before listing, so every login sees its own.
   */
  private async enforceMaxSessions(username: string): Promise<void> {
    const limit = this.maxSessionsPerUser!;
    const sessions = await this.cache.listUserSessions(username);
    if (sessions.length <= limit) return;
    const newestFirst = [...sessions].sort(
      (a, b) => b.session.createdAt - a.session.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
    );
    await Promise.all(newestFirst.slice(limit).map((old) => this.cache.invalidate(old.id)));
  }

  /**
   * The session of a token, or null (malformed, unknown, expired, idle too long, user removed or password
   * changed). With the idle timeout on, refreshes `lastSeenAt` at most once per fraction of the window,
   * conditionally: a session destroyed meanwhile is never recreated.
   * @throws SessionBackendUnavailableError
   */
  async validate(token: string): Promise<{ id: string; session: Session } | null> {
    if (!isWellFormedToken(token)) return null;
    const id = sessionIdFromToken(token);
    const session = await this.cache.get(id);
    if (session === null) return null;
    const now = this.clock();
    if (!this.isLive(session, now)) {
      await this.cache.invalidate(id).catch(() => undefined);
      return null;
    }
    const idle = session.idleSeconds;
    if (idle !== undefined && now - session.lastSeenAt >= idle * 1000 * TOUCH_FRACTION) {
      const touched: Session = { ...session, lastSeenAt: now };
      const remainingMs = Math.min(idle * 1000, session.expiresAt - now);
      const still = await this.cache.update(id, touched, Math.max(1, Math.ceil(remainingMs / 1000)));
      if (!still) return null;
      return { id, session: touched };
    }
    return { id, session };
  }

  /** Not expired, not idle too long, and the user still has the credential of the login. */
  private isLive(session: Session, now: number): boolean {
    if (session.expiresAt <= now) return false;
    if (session.idleSeconds !== undefined && session.lastSeenAt + session.idleSeconds * 1000 <= now) return false;
    const current = this.users.credentialIdOf(session.username);
    return current !== undefined && session.credentialId === current;
  }

  /** Ends the session of a token, if any. Idempotent. @throws SessionBackendUnavailableError */
  async logout(token: string): Promise<void> {
    if (!isWellFormedToken(token)) return;
    await this.cache.invalidate(sessionIdFromToken(token));
  }

  /** Ends every session of a user. @returns how many were removed. @throws SessionBackendUnavailableError */
  async logoutAll(username: string): Promise<number> {
    const removed = await this.cache.invalidateUser(username);
    this.logger.info({ user: username, removed }, "logout-all");
    return removed;
  }

  /** The user's live sessions, oldest first; `current` marks the one with cache id `currentId`. */
  async listSessions(username: string, currentId: string): Promise<SessionSummary[]> {
    const now = this.clock();
    const sessions = await this.cache.listUserSessions(username);
    return sessions
      .filter((s) => s.session.username === username && this.isLive(s.session, now))
      .sort((a, b) => a.session.createdAt - b.session.createdAt)
      .map(({ id, session }) => ({
        id: publicHandle(id),
        createdAt: new Date(session.createdAt).toISOString(),
        expiresAt: new Date(session.expiresAt).toISOString(),
        lastSeenAt: new Date(session.lastSeenAt).toISOString(),
        ip: session.ip ?? null,
        userAgent: session.userAgent ?? null,
        current: id === currentId,
      }));
  }

  /**
   * Ends the session of `username` whose public handle is `handle` (costs that user's session count).
   * @returns false when no session of this user has that handle.
   */
  async revokeSession(username: string, handle: string): Promise<boolean> {
    if (!isWellFormedHandle(handle)) return false;
    const sessions = await this.cache.listUserSessions(username);
    const match = sessions.find((s) => s.session.username === username && publicHandle(s.id) === handle);
    if (match === undefined) return false;
    await this.cache.invalidate(match.id);
    return true;
  }
}
