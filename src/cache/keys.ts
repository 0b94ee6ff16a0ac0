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
  /** Prefix of the per-IP login counters (`BANGUI_LOGIN_MAX_PER_IP`). */
  readonly throttleIpPrefix: string;
  /** SCAN MATCH pattern of every key under the prefix (a superset: filter with `isOwnKey`). */
  readonly scanPattern: string;
  /**
   * True for exactly the key shapes above (64 hex digits after the shape's prefix), so that `clear()`
   * never touches another tenant whose prefix merely starts with ours (`bangui:x...`, `bangui:s:...`).
   */
  isOwnKey(key: string): boolean;
}

/** Escapes Redis glob metacharacters so a prefix matches only itself. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** SHA-256, hex. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Builds the key space of one prefix (`BANGUI_KEY_PREFIX`). */
export function createKeySpace(prefix: string): KeySpace {
  const sessionPrefix = `${prefix}s:`;
  const userPrefix = `${prefix}u:`;
  const throttlePrefix = `${prefix}login-fail`;
  const throttleIpPrefix = `${prefix}login-ip`;
  // rate-limiter-flexible writes `<keyPrefix>:<key>`; the key is a throttleKey (SHA-256 hex).
  const shapes = [sessionPrefix, userPrefix, `${throttlePrefix}:`, `${throttleIpPrefix}:`].map(escapeRegExp).join("|");
  const own = new RegExp(`^(?:${shapes})[0-9a-f]{64}$`);
  return {
    prefix,
    sessionPrefix,
    throttlePrefix,
    throttleIpPrefix,
    scanPattern: `${escapeGlob(prefix)}*`,
    isOwnKey: (key) => own.test(key),
    session: (id) => sessionPrefix + id,
    userIndex: (username) => userPrefix + sha256Hex(username),
  };
}

/** Throttle key of one username+IP, hashed so a password typed into the username field never lands in Redis. */
export function throttleKey(username: string, ip: string): string {
  return sha256Hex(`${username}\u0000${ip}`);
}

/** Per-IP throttle key, hashed like the others. */
export function throttleIpKey(ip: string): string {
  return sha256Hex(`ip\u0000${ip}`);
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
