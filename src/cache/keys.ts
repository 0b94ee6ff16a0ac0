import { createHash } from "node:crypto";

/**
 * Every Redis key shape of the project, in one place. Keys never hold a token or a username in clear:
 * session keys use the session id (already a SHA-256 of the token), user keys a SHA-256 of the username.
 */
export interface KeySpace {
  readonly prefix: string;
  /** `<prefix>s:<id>`: the session value (JSON), with the session's TTL. */
  session(id: string): string;
  /** `<prefix>u:<sha256(username)>`: set of the user's session ids, expiring with the last of them. */
  userIndex(username: string): string;
  /** `<prefix>s:`: the prefix shared by every session key (near-cache tracking, SCAN). */
  readonly sessionPrefix: string;
  /** Prefix of the login-throttling counters (rate-limiter-flexible `keyPrefix`). */
  readonly throttlePrefix: string;
}

/** SHA-256, hex. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Builds the key space of one prefix (`BANGUI_KEY_PREFIX`). */
export function createKeySpace(prefix: string): KeySpace {
  const sessionPrefix = `${prefix}s:`;
  return {
    prefix,
    sessionPrefix,
    throttlePrefix: `${prefix}login-fail`,
    session: (id) => sessionPrefix + id,
    userIndex: (username) => `${prefix}u:${sha256Hex(username)}`,
  };
}

/** Throttle key of one username+IP, hashed so a password typed into the username field never lands in Redis. */
export function throttleKey(username: string, ip: string): string {
  return sha256Hex(`${username}\u0000${ip}`);
}

/**
 * Key shapes of the express-session store (`RedisSessionStore`): the session id is hashed, so a Redis
 * dump or MONITOR never shows a usable one.
 */
export interface StoreKeySpace {
  readonly prefix: string;
  /** `<prefix><sha256(sid)>`: the session (JSON). */
  session(sid: string): string;
  /** `<prefix><hash>` for an already hashed id (what `ids()` returns). */
  sessionOfHash(hash: string): string;
  /** `<prefix>user:<sha256(user)>`: set of the user's session hashes (only with `userOf`). */
  userIndex(user: string): string;
  /** SCAN pattern covering every key of the store (sessions and user indexes). */
  readonly pattern: string;
  /** The session hash of a key, or undefined when the key is not a session key of this store. */
  hashOf(key: string): string | undefined;
}

/** Builds the key space of one express-session store prefix. */
export function createStoreKeySpace(prefix: string): StoreKeySpace {
  const escaped = prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
  return {
    prefix,
    session: (sid) => prefix + sha256Hex(sid),
    sessionOfHash: (hash) => prefix + hash,
    userIndex: (user) => `${prefix}user:${sha256Hex(user)}`,
    pattern: `${escaped}*`,
    hashOf(key) {
      if (!key.startsWith(prefix)) return undefined;
      const rest = key.slice(prefix.length);
      return /^[0-9a-f]{64}$/.test(rest) ? rest : undefined;
    },
  };
}
