import { randomBytes } from "node:crypto";
import { sha256Hex } from "../cache/keys";

/** Length of a token: 32 random bytes in base64url without padding. */
export const TOKEN_LENGTH = 43;
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
const HANDLE_RE = /^[0-9a-f]{32}$/;

/** A new session token: 32 random bytes (256 bits), base64url. The only place a token is made. */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/** True when `token` has the shape of a token (checked before any backend call). */
export function isWellFormedToken(token: string): boolean {
  return token.length === TOKEN_LENGTH && TOKEN_RE.test(token);
}

/** The cache id of a token: SHA-256 hex, so no backend ever holds a usable token. */
export function sessionIdFromToken(token: string): string {
  return sha256Hex(token);
}

/**
 * The public handle of a session id (what `GET /api/auth/sessions` shows): a second one-way derivation,
 * so a handle gives neither the token nor the cache id.
 */
export function publicHandle(id: string): string {
  return sha256Hex(`handle:${id}`).slice(0, 32);
}

/** True when `handle` has the shape of a public handle. */
export function isWellFormedHandle(handle: string): boolean {
  return HANDLE_RE.test(handle);
}
