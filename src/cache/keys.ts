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
    throttleIpPrefix: `${prefix}login-ip`,
    session: (id) => sessionPrefix + id,
    userIndex: (username) => `${prefix}u:${sha256Hex(username)}`,
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
